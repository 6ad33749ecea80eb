"""Median-frequency class balancing (Eigen & Fergus, ICCV 2015; SegNet's CamVid recipe).

A class's frequency is its pixel count divided by the pixels of the images it appears in;
its weight is the median frequency over the classes present divided by its own, so thin,
rare classes (poles, signs, pedestrians) weigh more than sky and road. Pixels labelled 255
are not counted.
"""

from __future__ import annotations

import numpy as np
import torch


def class_pixel_counts(labels, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``labels``: an iterable of ``(H, W)`` integer masks (255 = ignore).

    Returns ``(C,)`` int64 pixel counts per class and ``(C,)`` int64 labelled pixels of the images
    in which each class appears."""
    counts = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    for label in labels:
        label = np.asarray(label).reshape(-1)
        c = np.bincount(label[label < num_classes].astype(np.int64), minlength=num_classes)
        counts += c
        image_pixels += np.where(c > 0, c.sum(), 0)
    return counts, image_pixels


def median_frequency_weights(counts: np.ndarray, image_pixels: np.ndarray) -> torch.Tensor:
    """``(C,)`` float32 weights ``median(f) / f_c`` with ``f_c = counts_c / image_pixels_c``;
    classes that never appear get weight 1 (no pixel of theirs is ever weighed).

    Example:
        >>> [round(w, 3) for w in median_frequency_weights(np.array([30, 10, 0]), np.array([40, 40, 0])).tolist()]
        [0.667, 2.0, 1.0]
    """
    counts, image_pixels = np.asarray(counts, np.float64), np.asarray(image_pixels, np.float64)
    present = counts > 0
    if not present.any():
        return torch.ones(counts.size)
    freq = np.where(present, counts / np.maximum(image_pixels, 1), np.nan)
    median = np.nanmedian(freq)
    return torch.from_numpy(np.where(present, median / np.where(present, freq, 1.0), 1.0).astype(np.float32))
