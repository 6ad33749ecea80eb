"""Symmetric cross-entropy (Wang et al. 2019), the unsupervised loss of U2PL+ ("Using Unreliable
Pseudo-Labels for Label-Efficient Semantic Segmentation", eq. 4).

    l_sce(p, y) = ξ1 CE(p, y) + ξ2 CE(y, p),   CE(y, p) = -Σ_c p_c log y_c   (reverse CE)

y is one-hot, so log y_c is 0 for the label and -inf elsewhere; like the original, the zeros are
clamped to ``clamp`` (1e-4), which makes the reverse
term A (1 - p_label) with A = -log(clamp): a bounded, noise-tolerant MAE-like term.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX


def symmetric_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, xi1: float = 1.0, xi2: float = 0.1,
                            weights: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX,
                            clamp: float = 1e-4) -> torch.Tensor:
    """Mean over valid pixels of ``w * (ξ1 CE + ξ2 RCE)``.

    Args:
        logits: (B, C, H, W) float.
        labels: (B, H, W) int64 class ids, ``ignore_index`` skipped.
        xi1, xi2: weights of the forward and reverse terms (U2PL+: 1 and 0.1).
        weights: optional (B, H, W) float >= 0 per-pixel weights.
        clamp: the one-hot label's zeros are raised to this before the log (reverse term).

    Returns:
        A scalar; 0 (with gradient) when no pixel is valid.

    Example:
        >>> logits = torch.zeros(1, 2, 1, 1); labels = torch.zeros(1, 1, 1, dtype=torch.long)
        >>> round(float(symmetric_cross_entropy(logits, labels)), 4)  # log 2 + 0.1 * 0.5 * -log(1e-4)
        1.1537
    """
    valid = labels != ignore_index
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    logp = F.log_softmax(logits.float(), dim=1)
    ce = -logp.gather(1, safe[:, None]).squeeze(1)
    p_label = logp.exp().gather(1, safe[:, None]).squeeze(1)
    # -Σ_c p_c log y_c with log y = 0 for the label and log(clamp) elsewhere.
    rce = -math.log(clamp) * (1.0 - p_label)
    loss = xi1 * ce + xi2 * rce
    if weights is not None:
        loss = loss * weights.to(loss.dtype)
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return loss.sum() / valid.sum().clamp_min(1)
