"""Cross-entropy with an ignore index and optional per-pixel weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
                           ignore_index: int = IGNORE_INDEX, denominator: str = "valid") -> torch.Tensor:
    """Mean of ``w * CE`` over pixels.

    Args:
        logits: ``(B, C, H, W)`` float.
        labels: ``(B, H, W)`` int64 class ids, ``ignore_index`` skipped.
        weights: optional ``(B, H, W)`` float >= 0 per-pixel weights (1 when None).
        denominator: ``"valid"`` divides by the number of non-ignored pixels (a weight below 1
            really lowers a pixel's say); ``"all"`` divides by every pixel, ignored ones included,
            as URN's public code does.

    Returns:
        A scalar; 0 (with gradient) when no pixel is valid.

    Example:
        >>> logits = torch.zeros(1, 3, 2, 2); labels = torch.tensor([[[0, 1], [2, 255]]])
        >>> round(float(weighted_cross_entropy(logits, labels)), 4)
        1.0986
    """
    if denominator not in ("valid", "all"):
        raise ValueError(f"weighted_cross_entropy: denominator must be 'valid' or 'all', got {denominator!r}")
    ce = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    if weights is not None:
        ce = ce * weights.to(ce.dtype)
    count = (labels != ignore_index).sum() if denominator == "valid" else torch.tensor(labels.numel(), device=labels.device)
    return ce.sum() / count.clamp_min(1)
