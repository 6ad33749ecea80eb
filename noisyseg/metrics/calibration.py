"""Expected calibration error of per-pixel probabilities."""

from __future__ import annotations

import numpy as np
import torch

IGNORE = 255


class CalibrationError:
    """ECE over ``bins`` equal-width confidence bins, streamed over images.

    ECE = Σ_b (n_b / n) |accuracy_b - confidence_b|, confidence = max_c p_c, pixels with GT 255
    skipped.
    """

    def __init__(self, bins: int = 15):
        self.bins = bins
        self.count = torch.zeros(bins, dtype=torch.float64)
        self.correct = torch.zeros(bins, dtype=torch.float64)
        self.confidence = torch.zeros(bins, dtype=torch.float64)

    def update(self, probs, gt) -> None:
        """probs: ``(C, H, W)`` or ``(B, C, H, W)``; gt: ``(H, W)`` / ``(B, H, W)`` integer labels."""
        probs = torch.as_tensor(np.asarray(probs) if not torch.is_tensor(probs) else probs).float()
        gt = torch.as_tensor(np.asarray(gt) if not torch.is_tensor(gt) else gt).long()
        if probs.dim() == 3:
            probs, gt = probs[None], gt[None]
        conf, pred = probs.max(dim=1)
        valid = gt != IGNORE
        conf, hit = conf[valid].double(), (pred[valid] == gt[valid]).double()
        idx = (conf * self.bins).long().clamp_(0, self.bins - 1)
        self.count += torch.bincount(idx, minlength=self.bins).double()
        self.correct += torch.bincount(idx, weights=hit, minlength=self.bins)
        self.confidence += torch.bincount(idx, weights=conf, minlength=self.bins)

    def ece(self) -> float:
        n = float(self.count.sum())
        if n == 0:
            return float("nan")
        gap = (self.correct - self.confidence).abs()
        return float(gap.sum() / n)
