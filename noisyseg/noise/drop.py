"""Object drop: whole connected components vanish into what surrounds them (or a background class)."""

from __future__ import annotations

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.noise._regions import components, fill_from_nearest


def object_drop(label: np.ndarray, rng: np.random.Generator, num_classes: int, p: float = 0.3,
                background: int = -1, max_share: float = 0.15) -> np.ndarray:
    """Drops each component smaller than ``max_share`` of the image with probability ``p``.

    Dropped pixels take ``background`` when it is a class id, otherwise the label of the nearest
    pixel outside the component (the object was missed and the scene fills its place).
    """
    out = label.copy()
    limit = max_share * label.size
    for c in range(num_classes):
        for comp in components(label, c, min_pixels=16):
            if comp.sum() > limit or rng.random() >= p:
                continue
            if 0 <= background < num_classes:
                out[comp] = background
            else:
                out = fill_from_nearest(out, comp & (out != IGNORE_INDEX))
    return out
