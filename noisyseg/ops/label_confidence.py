"""Each pixel's probability of its own label, its most probable class and that class's probability.

The compiled kernel (``torch.ops.noisyseg.label_confidence``) reads each pixel's C values once;
the pure-torch reference needs an amax, C equality planes and a gather over the strided class axis.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from noisyseg.ops._ext import has_op

__all__ = ["LabelConfidence", "label_confidence", "label_confidence_reference"]


class LabelConfidence(NamedTuple):
    """Result of :func:`label_confidence`, each ``(B, H, W)``."""

    p_label: torch.Tensor  #: probs' dtype, probability of the pixel's label (0 where the label is not a class)
    best: torch.Tensor  #: int64, most probable class (ties: the lower id)
    p_best: torch.Tensor  #: probs' dtype, its probability


def _check(probs: torch.Tensor, labels: torch.Tensor) -> None:
    if probs.dim() != 4 or not probs.is_floating_point():
        raise ValueError(f"label_confidence: probs must be floating [B, C, H, W], got {probs.dtype} {tuple(probs.shape)}")
    if not 1 <= probs.shape[1] <= 255:
        raise ValueError(f"label_confidence: probs must have 1 to 255 classes (dim 1), got {probs.shape[1]}")
    b, _, h, w = probs.shape
    if labels.dtype != torch.int64 or tuple(labels.shape) != (b, h, w):
        raise ValueError(f"label_confidence: labels must be int64 [B, H, W] = [{b}, {h}, {w}], "
                         f"got {labels.dtype} {tuple(labels.shape)}")


def label_confidence(probs: torch.Tensor, labels: torch.Tensor) -> LabelConfidence:
    """One pass over a dense prediction for what label-noise detection reads from it.

    Args:
        probs: (B, C, H, W) float16/bfloat16/float32/float64 probabilities, 1 <= C <= 255, finite.
        labels: (B, H, W) int64; values outside 0..C-1 (255 = ignore) give ``p_label`` 0.

    Returns:
        LabelConfidence(p_label, best, p_best), each (B, H, W): probs' dtype, int64, probs' dtype
        (values of ``probs``, so exact).
    """
    _check(probs, labels)
    if has_op("label_confidence") and probs.device.type in ("cpu", "cuda"):
        return LabelConfidence(*torch.ops.noisyseg.label_confidence(probs.detach(), labels))
    return label_confidence_reference(probs, labels)


def label_confidence_reference(probs: torch.Tensor, labels: torch.Tensor) -> LabelConfidence:
    """Pure-torch :func:`label_confidence` (any device)."""
    _check(probs, labels)
    probs = probs.detach()
    C = probs.shape[1]
    p_best = probs.amax(1)
    best = torch.empty(p_best.shape, dtype=torch.int64, device=probs.device)
    for c in reversed(range(C)):  # the lowest class attaining the maximum wins
        best.masked_fill_(probs[:, c] == p_best, c)
    inside = (labels >= 0) & (labels < C)
    p_label = probs.gather(1, torch.where(inside, labels, 0)[:, None]).squeeze(1)
    return LabelConfidence(torch.where(inside, p_label, 0.0), best, p_best)
