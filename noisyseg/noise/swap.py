"""Class swap: whole components take another class present in the same scene."""

from __future__ import annotations

import numpy as np

from noisyseg.noise._regions import components


def class_swap(label: np.ndarray, rng: np.random.Generator, num_classes: int, p: float = 0.2,
               max_share: float = 0.2) -> np.ndarray:
    """Relabels each component smaller than ``max_share`` of the image with probability ``p``.

    The new class is drawn among the image's other classes weighted by their area (the classes a
    weak teacher confuses are the ones in the scene); with no other class, a random one.
    """
    out = label.copy()
    counts = np.bincount(label.reshape(-1), minlength=256)[:num_classes].astype(np.float64)
    limit = max_share * label.size
    for c in range(num_classes):
        for comp in components(label, c, min_pixels=16):
            if comp.sum() > limit or rng.random() >= p:
                continue
            weights = counts.copy()
            weights[c] = 0
            if weights.sum() > 0:
                target = int(rng.choice(num_classes, p=weights / weights.sum()))
            else:
                target = int((c + rng.integers(1, num_classes)) % num_classes) if num_classes > 1 else c
            out[comp] = target
    return out
