"""Boundary shift: class regions grow or shrink by up to k pixels (URN's wide / narrow responses)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from noisyseg.constants import IGNORE_INDEX
from noisyseg.noise._regions import fill_from_nearest


def boundary_shift(label: np.ndarray, rng: np.random.Generator, num_classes: int, k: int = 6,
                   p: float = 0.6) -> np.ndarray:
    """Dilates or erodes each present class, chosen with probability ``p``, by 1..k pixels.

    A dilated class takes over the non-ignore pixels within the shift distance of it; an eroded
    class gives the pixels within that distance of its border to the nearest other class. Ignore
    pixels (255) stay ignore.

    Args:
        label: ``(H, W)`` uint8 class ids, 255 = ignore.
        k: largest shift in pixels.
        p: chance that a present class is shifted.
    """
    out = label.copy()
    present = [int(c) for c in np.unique(label) if c < num_classes]
    for c in rng.permutation(present):
        if rng.random() >= p:
            continue
        shift = int(rng.integers(1, k + 1))
        is_c = out == c
        if not is_c.any():
            continue
        if rng.random() < 0.5:  # wide response: grow
            near = ndimage.distance_transform_edt(~is_c) <= shift
            out[near & (out != IGNORE_INDEX)] = c
        else:  # narrow response: shrink
            inner = ndimage.distance_transform_edt(is_c)
            out = fill_from_nearest(out, is_c & (inner <= shift))
    return out
