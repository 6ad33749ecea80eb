"""Cross-entropy against soft targets (PseudoSeg's consistency loss on soft pseudo-labels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None,
                       valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over valid pixels of ``w * -Σ_c q_c log softmax(logits)_c``.

    Args:
        logits: (B, C, H, W) float.
        targets: (B, C, H, W) float soft labels q, summing to 1 over C (not checked; detached).
        weights: optional (B, H, W) float >= 0 per-pixel weights.
        valid: optional (B, H, W) bool; other pixels (e.g. a cutout) do not count.

    Returns:
        A scalar; 0 (with gradient) when no pixel is valid. With one-hot targets it equals the
        ordinary cross-entropy.

    Example:
        >>> q = torch.full((1, 4, 2, 2), 0.25)
        >>> round(float(soft_cross_entropy(torch.zeros(1, 4, 2, 2), q)), 4)  # log 4
        1.3863
    """
    if logits.shape != targets.shape:
        raise ValueError(f"soft_cross_entropy: logits and targets must share a (B, C, H, W) shape, got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    loss = -(targets.detach().to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(1)
    if weights is not None:
        loss = loss * weights.to(loss.dtype)
    if valid is None:
        return loss.mean()
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return loss.sum() / valid.sum().clamp_min(1)
