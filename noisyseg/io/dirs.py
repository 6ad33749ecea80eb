"""Per-image directories keyed by image id: label, probs, features and weights dirs.

- label dir:    ``<id>.png``  uint8 class ids, 255 = ignore (grey or palette PNG; palette indices are ids)
- probs dir:    ``<id>.npy``  float16 ``(C, H, W)`` probabilities at image size, summing to 1 per pixel
- features dir: ``<id>.npy``  float16 ``(D, h, w)`` at the model's stride
- weights dir:  ``<id>.png``  uint8 weight x 255, or ``<id>.npy`` float16 ``(H, W)``

Readers validate what they load and raise ``InputError`` naming the file, what was expected and what
was found. Writers are atomic.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from noisyseg.errors import InputError
from noisyseg.io.atomic import atomic_write
from noisyseg.io.dataset import IGNORE_INDEX, check_id


def read_label_png(path: str | os.PathLike, num_classes: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Reads a label PNG as ``(H, W)`` uint8 ids, checking mode, size and the id range.

    Args:
        path: the PNG file.
        num_classes: C; values must lie in 0..C-1 or be 255.
        size: expected ``(H, W)``, usually the image's.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "a label PNG", "no such file")
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode not in ("L", "P"):
                raise InputError(path, "a single-channel PNG of class ids (grey 'L' or palette 'P')", f"mode '{mode}'")
            arr = np.array(im)  # palette PNGs give their indices, which are the class ids
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, "a readable PNG", f"an unreadable file ({e})") from None
    if arr.dtype != np.uint8:
        raise InputError(path, "8-bit class ids", f"dtype {arr.dtype}")
    if size is not None and arr.shape != tuple(size):
        raise InputError(path, f"size {size[1]}x{size[0]} (W x H) like its image", f"{arr.shape[1]}x{arr.shape[0]}")
    check_label_values(arr, num_classes, path)
    return arr


def check_label_values(arr: np.ndarray, num_classes: int, where: str | os.PathLike) -> None:
    """Raises unless every value is a class id in 0..C-1 or the ignore index 255."""
    counts = np.bincount(arr.reshape(-1), minlength=256)
    bad = np.flatnonzero(counts[num_classes:IGNORE_INDEX])
    if bad.size:
        value = int(bad[0]) + num_classes
        raise InputError(where, f"class ids in 0..{num_classes - 1} or 255",
                         f"value {value} in {int(counts[value])} pixels")


def write_label_png(path: str | os.PathLike, label: np.ndarray, palette: list[list[int]] | None = None) -> Path:
    """Writes ``(H, W)`` uint8 ids atomically, as a palette PNG when a palette is given."""
    from PIL import Image

    label = np.asarray(label)
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f"write_label_png: expected (H, W) uint8, got {label.shape} {label.dtype}")
    im = Image.fromarray(label, mode="L")
    if palette:
        flat = [v for rgb in palette for v in rgb][: 256 * 3]
        flat += [0] * (256 * 3 - len(flat))
        flat[IGNORE_INDEX * 3: IGNORE_INDEX * 3 + 3] = [255, 255, 255]
        im = im.convert("P")
        im.putpalette(flat)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise InputError(path, what, "no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(path, f"a .npy file with {what}", f"an unreadable file ({e})") from None


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Writes a .npy atomically."""
    return atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


class ImageDir:
    """A directory of ``<id><suffix>`` files."""

    suffix = ".png"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, image_id: str) -> Path:
        return self.root / f"{check_id(image_id, self.root)}{self.suffix}"

    def exists(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    def require(self) -> "ImageDir":
        if not self.root.is_dir():
            raise InputError(self.root, f"a {type(self).__name__[:-3].lower()} directory", "no such directory")
        return self


class LabelDir(ImageDir):
    """``<id>.png`` uint8 class ids, 255 = ignore."""

    suffix = ".png"

    def read(self, image_id: str, num_classes: int, size: tuple[int, int] | None = None) -> np.ndarray:
        return read_label_png(self.path(image_id), num_classes, size)

    def write(self, image_id: str, label: np.ndarray, palette: list[list[int]] | None = None) -> Path:
        return write_label_png(self.path(image_id), label, palette)


class ProbsDir(ImageDir):
    """``<id>.npy`` float16 ``(C, H, W)`` probabilities summing to 1 over C."""

    suffix = ".npy"

    def read(self, image_id: str, num_classes: int, size: tuple[int, int] | None = None) -> np.ndarray:
        path = self.path(image_id)
        expect = f"probabilities of shape (C={num_classes}, H, W)" if size is None else \
            f"probabilities of shape ({num_classes}, {size[0]}, {size[1]})"
        arr = _load_npy(path, expect)
        if arr.dtype.kind != "f":
            raise InputError(path, expect, f"dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[0] != num_classes or (size is not None and arr.shape[1:] != tuple(size)):
            raise InputError(path, expect, f"shape {arr.shape}")
        # One pass in torch (vectorised half -> float): a NaN/inf anywhere makes its pixel's sum
        # non-finite, so the detailed finiteness check runs only when that happens.
        t = torch.from_numpy(arr)
        sums = t.sum(0, dtype=torch.float64 if arr.dtype == np.float64 else torch.float32)
        if not bool(torch.isfinite(sums).all()):
            check_finite(arr, path)
        tol = 2e-2 if arr.dtype == np.float16 else 1e-3
        worst = float(sums.flatten()[(sums - 1).abs().argmax()]) if sums.numel() else 1.0
        if abs(worst - 1) > tol:
            raise InputError(path, "probabilities summing to 1 over classes", f"a pixel summing to {worst:.4g}")
        if t.numel() and float(t.min()) < 0:
            raise InputError(path, "probabilities >= 0", f"minimum {float(t.min()):.4g}")
        return arr

    def write(self, image_id: str, probs: np.ndarray) -> Path:
        return save_npy(self.path(image_id), probs.astype(np.float16, copy=False))


class FeaturesDir(ImageDir):
    """``<id>.npy`` float16 ``(D, h, w)`` features at the model's stride."""

    suffix = ".npy"

    def read(self, image_id: str, dim: int | None = None) -> np.ndarray:
        path = self.path(image_id)
        expect = "features of shape (D, h, w)" if dim is None else f"features of shape ({dim}, h, w)"
        arr = _load_npy(path, expect)
        if arr.dtype.kind != "f" or arr.ndim != 3 or (dim is not None and arr.shape[0] != dim):
            raise InputError(path, expect, f"shape {arr.shape} dtype {arr.dtype}")
        check_finite(arr, path)
        return arr

    def write(self, image_id: str, features: np.ndarray) -> Path:
        return save_npy(self.path(image_id), features.astype(np.float16, copy=False))


class WeightsDir(ImageDir):
    """``<id>.png`` uint8 (weight x 255) or ``<id>.npy`` float16 ``(H, W)``; the .npy wins when both exist."""

    def path(self, image_id: str) -> Path:
        npy = self.root / f"{check_id(image_id, self.root)}.npy"
        return npy if npy.is_file() else self.root / f"{image_id}.png"

    def read(self, image_id: str, size: tuple[int, int] | None = None) -> np.ndarray:
        """Weights as ``(H, W)`` float32 >= 0."""
        path = self.path(image_id)
        if path.suffix == ".npy":
            arr = _load_npy(path, "weights of shape (H, W)")
            if arr.dtype.kind != "f" or arr.ndim != 2:
                raise InputError(path, "float weights of shape (H, W)", f"shape {arr.shape} dtype {arr.dtype}")
            check_finite(arr, path)
            if float(arr.min(initial=0)) < 0:
                raise InputError(path, "weights >= 0", f"minimum {float(arr.min()):.4g}")
            arr = arr.astype(np.float32)
        else:
            from PIL import Image

            if not path.is_file():
                raise InputError(path, "a weights PNG or .npy", "no such file")
            with Image.open(path) as im:
                if im.mode != "L":
                    raise InputError(path, "a grey 8-bit PNG (weight x 255)", f"mode '{im.mode}'")
                arr = np.asarray(im, dtype=np.float32) / 255.0
        if size is not None and arr.shape != tuple(size):
            raise InputError(path, f"weights of size {size[1]}x{size[0]} (W x H) like the image", f"{arr.shape[1]}x{arr.shape[0]}")
        return arr

    def write(self, image_id: str, weights: np.ndarray, as_float: bool = False) -> list[Path]:
        """Writes the PNG (always) and, with ``as_float``, the float16 .npy too."""
        from PIL import Image

        weights = np.asarray(weights, dtype=np.float32)
        png = np.clip(np.rint(weights * 255.0), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(png, mode="L").save(buf, format="PNG")
        out = [atomic_write(self.root / f"{image_id}.png", lambda f: f.write(buf.getvalue()))]
        if as_float:
            out.append(save_npy(self.root / f"{image_id}.npy", weights.astype(np.float16)))
        return out


def check_finite(arr: np.ndarray, where: str | os.PathLike) -> None:
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(where, "finite values", f"{bad} NaN/inf values")
