"""Class colours: a dataset's palette, checked, or the Pascal VOC colour map when it has none.

A palette is a list of ``[r, g, b]`` (0..255), one per class id; the ignore index 255 is drawn white.
"""

from __future__ import annotations

import os

from noisyseg.errors import InputError

IGNORE_COLOUR = [255, 255, 255]


def voc_palette(n: int = 256) -> list[list[int]]:
    """The Pascal VOC colour map: class ``i``'s bits spread over the high bits of r, g and b."""
    palette = []
    for i in range(n):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append([r, g, b])
    return palette


def check_palette(palette, num_classes: int, where: str | os.PathLike) -> list[list[int]]:
    """``palette`` as a list of ``[r, g, b]``, raising unless it has a colour for each class."""
    if not isinstance(palette, list):
        raise InputError(where, f"'palette': a list of [r, g, b] colours, one for each of the {num_classes} classes",
                         type(palette).__name__)
    for k, rgb in enumerate(palette):
        if not (isinstance(rgb, (list, tuple)) and len(rgb) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in rgb)):
            raise InputError(where, "palette colours [r, g, b] with integers in 0..255", f"entry {k}: {rgb!r}"[:80])
    if len(palette) < num_classes:
        raise InputError(where, f"a palette colour for each of the {num_classes} classes", f"{len(palette)} colours")
    return [list(rgb) for rgb in palette]


def dataset_palette(ds) -> list[list[int]]:
    """The dataset's palette (checked against its classes), or the VOC colour map when it has none."""
    if ds.palette is None:
        return voc_palette(ds.num_classes)
    return check_palette(ds.palette, ds.num_classes, ds.root / "dataset.json")
