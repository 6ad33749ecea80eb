"""The label-PNG codec: ``(H, W)`` uint8 class ids, 255 = ignore, as a grey or palette PNG.

Ground-truth masks (``noisyseg.io.dataset``) and label dirs (``noisyseg.io.dirs``) are both read
and written here: reading checks mode, size and that every value is a class id in 0..C-1 or
``IGNORE_INDEX``; writing is atomic, as a palette PNG (ignore drawn white) when a palette is given.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError
from noisyseg.io.atomic import atomic_write
from noisyseg.io.images import open_image
from noisyseg.io.palette import IGNORE_COLOUR

__all__ = ["read_label_png", "check_label_values", "write_label_png"]


def read_label_png(path: str | os.PathLike, num_classes: int, size: tuple[int, int] | None = None,
                   check_values: bool = True) -> np.ndarray:
    """Reads a label PNG as ``(H, W)`` uint8 ids, checking mode, size and the id range.

    Args:
        path: the PNG file.
        num_classes: C; values must lie in 0..C-1 or be 255.
        size: expected ``(H, W)``, usually the image's.
        check_values: False skips the id range check, for a file whose values the caller has
            checked before and that is unchanged since (``LabelDir`` does this).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "a label PNG", "no such file")
    with open_image(path, "a readable PNG") as im:
        if im.mode not in ("L", "P"):
            raise InputError(path, "a single-channel PNG of class ids (grey 'L' or palette 'P')", f"mode '{im.mode}'")
        arr = np.array(im)  # palette PNGs give their indices, which are the class ids
    if arr.dtype != np.uint8:
        raise InputError(path, "8-bit class ids", f"dtype {arr.dtype}")
    if size is not None and arr.shape != tuple(size):
        raise InputError(path, f"size {size[1]}x{size[0]} (W x H) like its image", f"{arr.shape[1]}x{arr.shape[0]}")
    if check_values:
        check_label_values(arr, num_classes, path)
    return arr


def check_label_values(arr: np.ndarray, num_classes: int, where: str | os.PathLike) -> None:
    """Raises unless every value is a class id in 0..C-1 or the ignore index 255."""
    bad = (arr >= num_classes) & (arr != IGNORE_INDEX)  # two vector compares; a bincount is slower
    if bad.any():
        value = int(arr[bad].min())
        raise InputError(where, f"class ids in 0..{num_classes - 1} or 255",
                         f"value {value} in {int(np.count_nonzero(arr == value))} pixels")


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
        flat[IGNORE_INDEX * 3: IGNORE_INDEX * 3 + 3] = IGNORE_COLOUR
        im = im.convert("P")
        im.putpalette(flat)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # 2.5x faster than the default 6; files ~1.5x larger
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
