"""Shared helpers: nearest-label fill and connected components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from noisyseg.constants import IGNORE_INDEX


def fill_from_nearest(label: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Gives every pixel in ``holes`` the label of the nearest pixel outside it (ignore excluded)."""
    donors = ~holes & (label != IGNORE_INDEX)
    if not donors.any() or not holes.any():
        return label
    _, (iy, ix) = ndimage.distance_transform_edt(~donors, return_indices=True)
    out = label.copy()
    out[holes] = label[iy[holes], ix[holes]]
    return out


def components(label: np.ndarray, cls: int, min_pixels: int = 1) -> list[np.ndarray]:
    """Boolean masks of the 8-connected components of class ``cls`` with at least ``min_pixels``."""
    comp, n = ndimage.label(label == cls, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    sizes = np.bincount(comp.reshape(-1), minlength=n + 1)
    return [comp == i for i in range(1, n + 1) if sizes[i] >= min_pixels]
