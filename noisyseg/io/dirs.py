"""Per-image directories keyed by image id: label, probs, features and weights dirs.

- label dir:    ``<id>.png``  uint8 class ids, 255 = ignore (grey or palette PNG; palette indices are ids)
- probs dir:    ``<id>.npy``  float16 ``(C, H, W)`` probabilities at image size, summing to 1 per pixel
- features dir: ``<id>.npy``  float16 ``(D, h, w)`` at the model's stride
- weights dir:  ``<id>.png``  uint8 weight x 255, or ``<id>.npy`` float16 ``(H, W)``
- class maps:   ``<id>.npy``  float ``(C, h, w)`` CAMs, logits or soft labels (``read_class_maps``)

Readers validate what they load and raise ``InputError`` naming the file, what was expected and what
was found. Writers are atomic. Label PNGs go through ``noisyseg.io.labels`` (shared with the
dataset's masks).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from noisyseg.errors import InputError
from noisyseg.io.atomic import atomic_write
from noisyseg.io.dataset import check_id
from noisyseg.io.images import open_image
from noisyseg.io.labels import check_label_values, read_label_png, write_label_png  # noqa: F401  (re-exported)

FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _load_npy(path: Path, what: str, out: np.ndarray | None = None) -> np.ndarray:
    """Loads a .npy in native byte order; with ``out``, a C-order file of ``out``'s dtype and shape
    is read into ``out`` (and ``out`` returned) without a temporary array; any other file is loaded
    as usual."""
    if not path.is_file():
        raise InputError(path, what, "no such file")
    try:
        if out is not None:
            fmt = np.lib.format
            with open(path, "rb") as f:
                header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(f))
                shape, fortran_order, dtype = header(f) if header else ((), True, None)
                if not fortran_order and dtype == out.dtype and shape == out.shape and out.flags.c_contiguous:
                    if f.readinto(memoryview(out).cast("B")) != out.nbytes:
                        raise InputError(path, f"a .npy file with {what}", "a truncated file")
                    return out
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(path, f"a .npy file with {what}", f"an unreadable file ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(path, f"a .npy file with {what}", "an .npz archive")
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def load_float_npy(path: str | os.PathLike, what: str, ndim: int) -> np.ndarray:
    """A finite float16/32/64 array of ``ndim`` dimensions from a .npy (any byte order)."""
    path = Path(path)
    arr = _load_npy(path, what)
    if arr.dtype not in FLOATS or arr.ndim != ndim:
        raise InputError(path, what, f"shape {arr.shape} dtype {arr.dtype}")
    check_finite(arr, path)
    return arr


def read_class_maps(path: str | os.PathLike, num_classes: int, what: str,
                    size: tuple[int, int] | None = None) -> np.ndarray:
    """A finite float ``(C, h, w)`` .npy of per-class maps (CAMs, logits, soft labels), validated;
    ``what`` names them in errors, ``size`` pins (h, w) when given."""
    path = Path(path)
    shape = f"({num_classes}, h, w)" if size is None else f"({num_classes}, {size[0]}, {size[1]})"
    expect = f"{what} of shape {shape}"
    arr = load_float_npy(path, expect, 3)
    if arr.shape[0] != num_classes or (size is not None and arr.shape[1:] != tuple(size)):
        raise InputError(path, expect, f"shape {arr.shape}")
    return arr


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


def file_version(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, modification time) of a file, None when it cannot be read: a file whose
    version is unchanged since a reader validated it is not validated again by that reader."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class LabelDir(ImageDir):
    """``<id>.png`` uint8 class ids, 255 = ignore.

    Mode and size are checked on every read, the class ids once per file for this object: a file
    it has validated before that is unchanged since (``file_version``) is not scanned again, so
    that strategies and reports that read the labels twice pay for it once (as ``ProbsDir``).
    """

    suffix = ".png"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        self._validated: dict[str, tuple] = {}

    def read(self, image_id: str, num_classes: int, size: tuple[int, int] | None = None) -> np.ndarray:
        path = self.path(image_id)
        version = file_version(path)
        known = version is not None and self._validated.get(image_id) == (version, num_classes)
        arr = read_label_png(path, num_classes, size, check_values=not known)
        if version is not None:
            self._validated[image_id] = (version, num_classes)
        return arr

    def write(self, image_id: str, label: np.ndarray, palette: list[list[int]] | None = None) -> Path:
        return write_label_png(self.path(image_id), label, palette)


class ProbsDir(ImageDir):
    """``<id>.npy`` float16 ``(C, H, W)`` probabilities summing to 1 over C.

    Values are validated on read; a file this object has validated before and that is unchanged
    since (same inode, size and modification time: ``file_version``) is not validated again, so
    that two-pass strategies pay for it once.
    """

    suffix = ".npy"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        self._validated: dict[str, tuple[int, int, int] | None] = {}

    def read(self, image_id: str, num_classes: int, size: tuple[int, int] | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
        """Reads and validates ``(C, H, W)`` probabilities. With ``out`` (a C-contiguous array of the
        expected shape, e.g. one image of a batch), the file lands in it and ``out`` is returned: a
        file of ``out``'s dtype is read straight into it, others are converted."""
        path = self.path(image_id)
        expect = f"probabilities of shape (C={num_classes}, H, W)" if size is None else \
            f"probabilities of shape ({num_classes}, {size[0]}, {size[1]})"
        version = file_version(path)
        arr = _load_npy(path, expect, out)
        if arr.dtype not in FLOATS:
            raise InputError(path, expect, f"dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[0] != num_classes or (size is not None and arr.shape[1:] != tuple(size)):
            raise InputError(path, expect, f"shape {arr.shape}")
        if version is None or self._validated.get(image_id) != version:
            check_probabilities(arr, path)
            self._validated[image_id] = version
        if out is not None and arr is not out:
            out[...] = arr
            return out
        return arr

    def write(self, image_id: str, probs: np.ndarray) -> Path:
        return save_npy(self.path(image_id), probs.astype(np.float16, copy=False))


class FeaturesDir(ImageDir):
    """``<id>.npy`` float16 ``(D, h, w)`` features at the model's stride."""

    suffix = ".npy"

    def read(self, image_id: str, dim: int | None = None) -> np.ndarray:
        path = self.path(image_id)
        expect = "features of shape (D, h, w)" if dim is None else f"features of shape ({dim}, h, w)"
        arr = load_float_npy(path, expect, 3)
        if dim is not None and arr.shape[0] != dim:
            raise InputError(path, expect, f"shape {arr.shape}")
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
            arr = load_float_npy(path, "float weights of shape (H, W)", 2)
            if float(arr.min(initial=0)) < 0:
                raise InputError(path, "weights >= 0", f"minimum {float(arr.min()):.4g}")
            arr = arr.astype(np.float32)
        else:
            with open_image(path, "a weights PNG or .npy") as im:
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


_HALF_MAX_FINITE_BITS = 0x7BFF  # int16 view of float16: 0..0x7BFF are +0 .. the largest finite value


def check_probabilities(arr: np.ndarray, where: str | os.PathLike) -> None:
    """Raises unless ``arr (C, H, W)`` is finite, >= 0 and sums to 1 over C at each pixel (within
    2e-2 for float16, 1e-3 otherwise).

    float16 maps (what ``predict`` writes) are checked on their bits first: viewed as int16, every
    finite value >= +0 lies in 0..0x7BFF, so one integer min/max finds NaN, inf and negatives, and
    the per-pixel sums can then stay in float16. About 4x cheaper than summing in float32.
    """
    t = torch.from_numpy(arr)
    if not t.numel():
        return
    if arr.dtype == np.float16:
        low, high = (int(v) for v in torch.aminmax(t.view(torch.int16)))
        if high > _HALF_MAX_FINITE_BITS or low < 0:  # NaN/inf, or a sign bit (perhaps only -0.0)
            check_finite(arr, where)
            _check_nonnegative(t, where)
        sums = t.sum(0)
    else:
        sums = t.sum(0, dtype=torch.float64 if arr.dtype == np.float64 else torch.float32)
        if not bool(torch.isfinite(sums).all()):  # a NaN/inf anywhere makes its pixel's sum non-finite
            check_finite(arr, where)
        _check_nonnegative(t, where)
    deviation = (sums.float() - 1).abs()
    tol = 2e-2 if arr.dtype == np.float16 else 1e-3
    if float(deviation.max()) > tol:
        worst = float(sums.flatten()[deviation.argmax()])
        raise InputError(where, "probabilities summing to 1 over classes", f"a pixel summing to {worst:.4g}")


def _check_nonnegative(t: torch.Tensor, where: str | os.PathLike) -> None:
    low = float(t.min())
    if low < 0:
        raise InputError(where, "probabilities >= 0", f"minimum {low:.4g}")


def check_finite(arr: np.ndarray, where: str | os.PathLike) -> None:
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(where, "finite values", f"{bad} NaN/inf values")
