"""Image label-quality score: cleanlab's softmin over the pixels' own-label probability.

``score = Σ_i s_i · softmax((1 - s)/T)_i`` over an image's valid pixels, ``s_i`` the own-label
probability of pixel i and ``T`` the temperature (cleanlab's default 0.1): a weighted mean that
leans towards the worst pixels. 1 for a perfectly confident image, near 0 when a sizeable group of
pixels disagrees with its label. An image without valid pixels scores NaN.
"""

from __future__ import annotations

import torch

TEMPERATURE = 0.1
_EPSILON = 1e-30  # cleanlab's floor on the temperature


def softmin_scores(p_label: torch.Tensor, valid: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """``(B,)`` float64 scores of a batch: ``p_label`` ``(B, H, W)`` float, ``valid`` same-shape bool."""
    if not temperature:
        raise ValueError("softmin: temperature must be non-zero")
    B = p_label.shape[0]
    s = p_label.reshape(B, -1).double()
    ok = valid.reshape(B, -1)
    every = bool(ok.all())
    w = torch.rsub(s, 1.0).div_(max(temperature, _EPSILON))  # (1 - s) / T
    if not every:
        w.masked_fill_(~ok, -torch.inf)
        s.masked_fill_(~ok, 0.0)
    top = w.amax(1, keepdim=True)
    w.sub_(torch.where(torch.isfinite(top), top, 0.0)).exp_()  # the softmax's numerators; 0 where not valid
    total = w.sum(1)
    weighted = w.mul_(s).sum(1)
    return torch.where(total > 0, weighted / total, torch.nan)
