"""Class activation maps (CAM) of a GAP + linear classifier, and their max normalisation.

``class_activation_maps``: with a GAP + linear classifier, Grad-CAM equals plain CAM,
CAM_c = ReLU(Σ_k w_ck f_k), max-normalised per class and zeroed for absent classes (what
``noisyseg predict --cams`` writes and what PseudoSeg's SGC head starts from, see ``sgc``).

``normalise_cams``: the per-class max normalisation itself, shared with the ``cam-threshold``
pseudo-labeler (Yi et al.'s CAM baseline, U2PL's weakly supervised β), which normalises the
CAMs it is given.
"""

from __future__ import annotations

import torch


def normalise_cams(cams: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class max normalisation to [0, 1]: ReLU, divide by the max over H, W; all-zero maps stay 0.

    Args:
        cams: (B, C, H, W) float.
        present: optional (B, C) bool; absent classes are set to 0.
    Returns:
        (B, C, H, W) float32 in [0, 1], never NaN.
    """
    cams = cams.float().clamp_min(0)
    peak = cams.amax(dim=(2, 3), keepdim=True)
    out = torch.where(peak > 0, cams / peak.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(cams))
    if present is not None:
        out = out * present[:, :, None, None].to(out.dtype)
    return out


def class_activation_maps(stage4: torch.Tensor, weight: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """CAMs of a GAP + linear classifier.

    Args:
        stage4: (B, K, h, w) float, the features the classifier pools.
        weight: (C, K) float, the linear layer's weight (the bias does not localise).
        present: optional (B, C) bool; absent classes get all-zero maps.

    Returns:
        (B, C, h, w) float32 in [0, 1]: ReLU(Σ_k w_ck f_k) divided by its max per class; a class
        whose map is zero everywhere stays zero (never NaN).

    Example:
        >>> cams = class_activation_maps(torch.randn(2, 16, 5, 6), torch.randn(3, 16))
        >>> cams.shape, float(cams.max()) <= 1.0
        (torch.Size([2, 3, 5, 6]), True)
    """
    if stage4.dim() != 4 or weight.dim() != 2 or weight.shape[1] != stage4.shape[1]:
        raise ValueError(f"class_activation_maps: expected stage4 (B, K, h, w) and weight (C, K), got "
                         f"{tuple(stage4.shape)} and {tuple(weight.shape)}")
    return normalise_cams(torch.einsum("bkhw,ck->bchw", stage4.float(), weight.float()), present)


__all__ = ["class_activation_maps", "normalise_cams"]
