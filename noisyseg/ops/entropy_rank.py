"""Per-pixel entropy, its exact quantile over valid pixels, and per-pixel class ranks.

The compiled kernel (``torch.ops.noisyseg.entropy_rank``) reads each pixel's C values once and
computes softmax, entropy and ranks in registers; the quantile is an exact radix select on the
float bits, so it has no size cap (``torch.quantile`` refuses inputs above 2**24 elements).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from noisyseg.ops._ext import has_op

__all__ = ["EntropyRank", "entropy_rank", "entropy_rank_reference", "exact_quantile"]

# torch.quantile refuses inputs with more elements than this.
_TORCH_QUANTILE_MAX = 2**24


class EntropyRank(NamedTuple):
    """Result of :func:`entropy_rank`."""

    entropy: torch.Tensor  #: (B, H, W) float32, natural log
    threshold: torch.Tensor | None  #: 0-dim float32 quantile, or None when no quantile was asked
    rank: torch.Tensor  #: (B, C, H, W) uint8, 0 = most probable class


def _check(x: torch.Tensor, valid: torch.Tensor | None, quantile: float | None) -> None:
    if x.dim() != 4:
        raise ValueError(f"entropy_rank: x must be [B, C, H, W], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"entropy_rank: x must be a floating tensor, got {x.dtype}")
    if not 1 <= x.shape[1] <= 255:
        raise ValueError(f"entropy_rank: x must have 1 to 255 classes (dim 1), got {x.shape[1]}")
    if valid is not None:
        b, _, h, w = x.shape
        if valid.dtype != torch.bool or tuple(valid.shape) != (b, h, w):
            raise ValueError(f"entropy_rank: valid must be bool [B, H, W] = [{b}, {h}, {w}], "
                             f"got {valid.dtype} {tuple(valid.shape)}")
    if quantile is not None and not 0.0 <= quantile <= 1.0:
        raise ValueError(f"entropy_rank: quantile must be in [0, 1], got {quantile}")


def entropy_rank(x: torch.Tensor, is_logits: bool = True, valid: torch.Tensor | None = None,
                 quantile: float | None = None) -> EntropyRank:
    """Entropy, its quantile over valid pixels, and class ranks of a dense prediction.

    Args:
        x: (B, C, H, W) float16/bfloat16/float32/float64, 1 <= C <= 255. Logits when ``is_logits``
            (a numerically stable softmax over C is applied), else probabilities used as given
            (not renormalised; p <= 0 contributes 0, i.e. 0 log 0 = 0).
        is_logits: whether ``x`` holds logits.
        valid: optional (B, H, W) bool; only these pixels count for the quantile.
        quantile: a float in [0, 1], or None to skip the threshold.

    Returns:
        EntropyRank(entropy, threshold, rank):
        - entropy: (B, H, W) float32, natural log, >= 0.
        - threshold: 0-dim float32 on x's device: the quantile of entropy over valid pixels with
          numpy's default linear interpolation, exact for any size. NaN when no pixel is valid
          (no error, so the GPU path never syncs). None when ``quantile`` is None.
        - rank: (B, C, H, W) uint8; rank 0 = the most probable class, ties broken by the lower
          class id: ``rank[c] = #{k : x_k > x_c or (x_k == x_c and k < c)}``. For logits the
          logits themselves are ranked (softmax is monotone), so classes whose probabilities
          underflow to equal values still keep their logit order. NaN ranks as +inf.

    Not differentiable: the input is detached and the outputs never require grad.

    Example:
        >>> out = entropy_rank(torch.randn(2, 21, 64, 64), quantile=0.8)
        >>> out.entropy.shape, out.threshold.shape, out.rank.dtype
        (torch.Size([2, 64, 64]), torch.Size([]), torch.uint8)
    """
    _check(x, valid, quantile)
    x = x.detach()
    if has_op("entropy_rank"):
        entropy, threshold, rank = torch.ops.noisyseg.entropy_rank(x, is_logits, valid, quantile)
        return EntropyRank(entropy, threshold if quantile is not None else None, rank)
    return entropy_rank_reference(x, is_logits, valid, quantile)


def exact_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """numpy-style linear quantile of a 1-D tensor, exact beyond torch.quantile's size cap.

    Returns a 0-dim float32 tensor; NaN when ``values`` is empty.
    """
    n = values.numel()
    if n == 0:
        return torch.full((), float("nan"), dtype=torch.float32, device=values.device)
    if n <= _TORCH_QUANTILE_MAX:
        return torch.quantile(values.double(), q).float()
    pos = q * (n - 1)
    lo = min(int(pos), n - 1)
    hi = min(lo + 1, n - 1)
    v = values.double()
    v_lo = torch.kthvalue(v, lo + 1).values
    v_hi = torch.kthvalue(v, hi + 1).values if hi != lo else v_lo
    return (v_lo + (v_hi - v_lo) * (pos - lo)).float()


def entropy_rank_reference(x: torch.Tensor, is_logits: bool = True, valid: torch.Tensor | None = None,
                           quantile: float | None = None) -> EntropyRank:
    """Pure-torch :func:`entropy_rank` with the same semantics (the test oracle and fallback)."""
    _check(x, valid, quantile)
    x = x.detach()
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    xa = x.to(acc)
    if is_logits:
        logp = torch.log_softmax(xa, dim=1)
        p = logp.exp()
        plogp = torch.where(p > 0, p * logp, torch.zeros_like(p))
    else:
        p = xa
        plogp = torch.where(p > 0, p * torch.log(p.clamp_min(torch.finfo(acc).tiny)), torch.zeros_like(p))
        plogp = torch.where(p.isnan(), p, plogp)
    entropy = (-plogp.sum(dim=1)).float().clamp_min(0.0)
    # NaN ranks as +inf; a stable descending sort keeps lower class ids first among ties.
    key = torch.where(xa.isnan(), torch.full_like(xa, float("inf")), xa)
    order = torch.argsort(key, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1).expand_as(order)
    ranks.scatter_(1, order, positions)
    threshold = None
    if quantile is not None:
        values = entropy if valid is None else entropy[valid]
        threshold = exact_quantile(values.reshape(-1), quantile)
    return EntropyRank(entropy, threshold, ranks.to(torch.uint8))
