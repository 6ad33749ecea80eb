"""Expected calibration error of per-pixel probabilities."""

from __future__ import annotations

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX


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
        self.add(conf, pred, gt)

    def add(self, confidence: torch.Tensor, prediction: torch.Tensor, gt: torch.Tensor) -> None:
        """The same from each pixel's max probability and argmax (e.g. ``label_confidence``'s
        ``p_best`` and ``best``), same-shape tensors on any device. float16 confidences are
        counted through one exact float16 histogram (the same bins, a few times faster)."""
        bins = self.bins
        valid = gt != IGNORE_INDEX
        hit = prediction == gt
        if confidence.dtype == torch.float16:
            from noisyseg.ops.float16_histogram import float16_from_keys, grouped_histograms

            hist = grouped_histograms(confidence, hit, 2, valid).cpu().double()  # (miss, hit) x 65536 values
            values = torch.nan_to_num(float16_from_keys(torch.arange(1 << 16)).double(), nan=0.0, posinf=1.0, neginf=0.0)
            idx = (values * bins).long().clamp_(0, bins - 1)
            n = hist.sum(0)
            self.count += torch.bincount(idx, weights=n, minlength=bins)
            self.correct += torch.bincount(idx, weights=hist[1], minlength=bins)
            self.confidence += torch.bincount(idx, weights=n * values, minlength=bins)
            return
        conf = confidence.double()
        idx = torch.where(valid, (conf * bins).long().clamp_(0, bins - 1), bins)
        counts = torch.bincount((idx + (bins + 1) * hit.long()).reshape(-1), minlength=2 * (bins + 1)).cpu().double()
        self.count += counts[:bins] + counts[bins + 1: 2 * bins + 1]
        self.correct += counts[bins + 1: 2 * bins + 1]
        self.confidence += torch.bincount(idx.reshape(-1), weights=conf.reshape(-1), minlength=bins + 1).cpu()[:bins]

    def ece(self) -> float:
        n = float(self.count.sum())
        if n == 0:
            return float("nan")
        gap = (self.correct - self.confidence).abs()
        return float(gap.sum() / n)
