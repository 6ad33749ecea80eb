"""Pixel-level InfoNCE (U2PL, Wang et al., eq. 10) with cosine similarity and temperature τ."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                   temperature: float = 0.5) -> torch.Tensor:
    """Mean over anchors of -log(e^{s+/τ} / (e^{s+/τ} + Σ_j e^{s-_j/τ})), s = cosine similarity.

    Args:
        anchor: (M, D) float anchor features (student).
        positive: (M, D) one positive per anchor, or (D,) one shared positive (the class prototype).
        negatives: (M, N, D) N negatives per anchor.
        temperature: τ > 0 (U2PL: 0.5).

    Returns:
        A scalar (0 with gradient when M = 0). Computed as a cross-entropy over the N + 1
        logits with the positive at index 0, which is numerically stable.

    Example:
        >>> a = torch.tensor([[1.0, 0.0]]); pos = torch.tensor([1.0, 0.0]); neg = torch.tensor([[[0.0, 1.0]]])
        >>> round(float(pixel_info_nce(a, pos, neg)), 4)  # -log(e^2 / (e^2 + e^0))
        0.1269
    """
    if temperature <= 0:
        raise ValueError(f"pixel_info_nce: temperature must be > 0, got {temperature}")
    if anchor.dim() != 2 or negatives.dim() != 3 or negatives.shape[0] != anchor.shape[0] \
            or negatives.shape[2] != anchor.shape[1]:
        raise ValueError(f"pixel_info_nce: expected anchor (M, D) and negatives (M, N, D), got "
                         f"{tuple(anchor.shape)} and {tuple(negatives.shape)}")
    M, D = anchor.shape
    if positive.dim() == 1:
        positive = positive.expand(M, D)
    if positive.shape != (M, D):
        raise ValueError(f"pixel_info_nce: positive must be (M, D) = ({M}, {D}) or (D,), got {tuple(positive.shape)}")
    if M == 0:
        return anchor.sum() * 0.0
    a = F.normalize(anchor, dim=-1)
    pos = (a * F.normalize(positive, dim=-1)).sum(-1, keepdim=True)             # (M, 1)
    neg = torch.einsum("md,mnd->mn", a, F.normalize(negatives, dim=-1))         # (M, N)
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(M, dtype=torch.long, device=anchor.device))
