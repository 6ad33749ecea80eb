"""Source masks to class ids: index PNGs through an id map, colour PNGs through a colour table.

Either way the result is ``(H, W)`` uint8 ids in 0..C-1 or 255; a source value the table does not
know is an error naming the file, the value and how many pixels carry it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError

UNKNOWN = -1


def identity_map(num_classes: int) -> np.ndarray:
    """``(256,)`` int16 id map: 0..C-1 and 255 to themselves, any other value unknown."""
    table = np.full(256, UNKNOWN, np.int16)
    table[:num_classes] = np.arange(num_classes)
    table[IGNORE_INDEX] = IGNORE_INDEX
    return table


def pack(rgb) -> int:
    r, g, b = (int(v) for v in rgb)
    return (r << 16) | (g << 8) | b


class MaskConverter:
    """Converts one source mask file to ids.

    Args:
        index_map: ``(256,)`` int16, source index -> id (255 ignore, -1 unknown) for grey or palette
            PNGs; None when the source has only colour masks.
        colours: packed ``0xRRGGBB`` -> id (255 ignore) for RGB(A) PNGs; None when it has none.
    """

    def __init__(self, index_map: np.ndarray | None, colours: dict[int, int] | None):
        self.index_map, self.colours = index_map, colours

    def __call__(self, path: str | os.PathLike) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = Path(path)
        try:
            with Image.open(path) as im:
                mode = im.mode
                if mode in ("RGB", "RGBA"):
                    arr = np.asarray(im.convert("RGB"))
                elif mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                    arr = np.array(im)
                else:
                    raise InputError(path, "a grey, palette or RGB mask PNG", f"mode '{mode}'")
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(path, "a readable mask image", f"an unreadable file ({e})") from None
        if arr.ndim == 3:
            return self._colour(arr, path)
        return self._index(arr, path)

    def _index(self, arr: np.ndarray, path: Path) -> np.ndarray:
        if self.index_map is None:
            raise InputError(path, "an RGB colour mask (the colour table maps colours, not indices)",
                             "a single-channel mask")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
            raise InputError(path, "mask values in 0..255", f"values {int(arr.min())}..{int(arr.max())}")
        ids = self.index_map[arr.astype(np.intp)]
        unknown = ids == UNKNOWN
        if unknown.any():
            value = int(arr[unknown].min())
            known = ", ".join(str(v) for v in np.flatnonzero(self.index_map != UNKNOWN)[:12])
            raise InputError(path, f"mask values of the class table ({known}{', ...' if (self.index_map != UNKNOWN).sum() > 12 else ''})",
                             f"value {value} in {int((arr == value).sum())} pixels")
        return ids.astype(np.uint8)

    def _colour(self, rgb: np.ndarray, path: Path) -> np.ndarray:
        if self.colours is None:
            raise InputError(path, "a single-channel mask of class ids (no colour table was given)", "an RGB mask")
        packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
        values, inverse = np.unique(packed.reshape(-1), return_inverse=True)
        ids = np.empty(len(values), np.uint8)
        for k, v in enumerate(values.tolist()):
            if v not in self.colours:
                n = int(np.count_nonzero(inverse == k))
                raise InputError(path, "colours of the colour table",
                                 f"colour ({v >> 16}, {(v >> 8) & 255}, {v & 255}) in {n} pixels")
            ids[k] = self.colours[v]
        return ids[inverse].reshape(packed.shape)
