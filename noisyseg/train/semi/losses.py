"""Per-pixel losses of the unlabelled stream and the confidence mask with its denominator.

The unsupervised loss of a view is FixMatch/UniMatch's

    L_u = Σ_p [target_p valid] [conf_p >= τ] w_p ℓ_p  /  Σ_p [p in the view]

where "in the view" excludes padding and cutout only: pixels below the confidence threshold τ (and
pixels a pseudo-labeler ignored) stay in the denominator, so a batch with few confident pixels
pulls less, instead of being renormalised to full strength.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX

UNSUP_LOSSES = ("ce", "sce", "soft-ce")


def pixel_loss(kind: str, logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None = None,
               xi: tuple[float, float] = (1.0, 0.1), clamp: float = 1e-4) -> torch.Tensor:
    """Loss per pixel, 0 where ``labels`` is ignored (255).

    Args:
        kind: ``ce`` (cross-entropy with the hard labels), ``sce`` (symmetric CE ξ1 CE + ξ2 RCE, see
            ``noisyseg.losses.symmetric_cross_entropy``) or ``soft-ce`` (-Σ_c q_c log p_c with the soft
            labels ``soft``).
        logits: (B, C, H, W) float.
        labels: (B, H, W) int64 class ids, 255 = ignore.
        soft: (B, C, H, W) float soft labels summing to 1 over C; required for ``soft-ce``.

    Returns:
        (B, H, W) float32.
    """
    valid = labels != IGNORE_INDEX
    if kind == "soft-ce":
        if soft is None:
            raise ValueError("pixel_loss: soft-ce needs soft labels; the pseudo-labeler returned none")
        loss = -(soft.detach().float() * F.log_softmax(logits.float(), 1)).sum(1)
    elif kind in ("ce", "sce"):
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        logp = F.log_softmax(logits.float(), 1).gather(1, safe[:, None])[:, 0]
        loss = -logp
        if kind == "sce":
            loss = xi[0] * loss + xi[1] * -math.log(clamp) * (1 - logp.exp())
    else:
        raise ValueError(f"pixel_loss: kind must be one of {UNSUP_LOSSES}, got {kind!r}")
    return torch.where(valid, loss, torch.zeros_like(loss))


def confidence_keep(labels: torch.Tensor, conf: torch.Tensor, threshold: float) -> torch.Tensor:
    """Pixels that count in the numerator: a target (not 255) with confidence >= ``threshold``.

    Args:
        labels: (B, H, W) int64; conf: (B, H, W) float. Returns (B, H, W) bool.
    """
    return (labels != IGNORE_INDEX) & (conf >= threshold)


def masked_sum(loss: torch.Tensor, keep: torch.Tensor, in_view: torch.Tensor,
               weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_view keep · w · loss, Σ view): numerator and denominator of the module doc's L_u.

    Args:
        loss: (B, H, W) float; keep, in_view: (B, H, W) bool; weights: optional (B, H, W) float.
    """
    w = (keep & in_view).to(loss.dtype)
    if weights is not None:
        w = w * weights.to(loss.dtype)
    return (loss * w).sum(), in_view.sum().to(torch.float32)
