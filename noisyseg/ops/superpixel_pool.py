"""Per-superpixel means of bilinearly upsampled features, without the upsampled tensor.

The compiled op ``torch.ops.noisyseg.superpixel_pool`` (csrc/ops/superpixel_pool.cpp) is used when
it is registered; otherwise :func:`superpixel_pool_reference`, a pure-torch version with the same
semantics, runs.

Speed depends on the segment map's layout: the CPU kernel sums each row's runs of one segment at
once, so SLIC-like maps (long runs) pool ~90x faster than bilinear upsampling + torch_scatter's
``scatter_mean`` (one thread, 4x256x64x64 features onto 512x512 maps, N=1000), while incoherent
random ids (no runs: the worst case) are only ~10x faster (bench/op_superpixel_pool.py prints both).
"""

from __future__ import annotations

import torch

from noisyseg.ops._ext import has_op

__all__ = ["superpixel_pool", "superpixel_pool_reference"]


def _check(features: torch.Tensor, segments: torch.Tensor) -> None:
    if features.dim() != 4:
        raise ValueError(f"superpixel_pool: features must be [B, D, h, w], got {tuple(features.shape)}")
    if not features.is_floating_point():
        raise TypeError(f"superpixel_pool: features must be a floating tensor, got {features.dtype}")
    if segments.dim() != 3:
        raise ValueError(f"superpixel_pool: segments must be [B, H, W], got {tuple(segments.shape)}")
    if segments.is_floating_point() or segments.is_complex() or segments.dtype == torch.bool:
        raise TypeError(f"superpixel_pool: segments must be an integer tensor, got {segments.dtype}")
    if segments.shape[0] != features.shape[0]:
        raise ValueError(
            f"superpixel_pool: segments batch ({segments.shape[0]}) must match features batch ({features.shape[0]})"
        )


def _num_segments(segments: torch.Tensor, num_segments: int | None) -> int:
    if num_segments is not None:
        if num_segments < 0:
            raise ValueError(f"superpixel_pool: num_segments must be >= 0, got {num_segments}")
        return int(num_segments)
    return int(segments.max().item()) + 1 if segments.numel() > 0 else 0


def superpixel_pool(
    features: torch.Tensor,
    segments: torch.Tensor,
    num_segments: int | None = None,
    align_corners: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average features over superpixels as if they were bilinearly upsampled to the segment map.

    Equals ``F.interpolate(features, size=(H, W), mode="bilinear", align_corners=align_corners)``
    followed by a per-segment mean, but never forms the ``(B, D, H, W)`` tensor: the cost is
    ``O(B*H*W + nnz*D)`` where nnz is the number of (segment, low-res cell) pairs.

    Args:
        features: ``(B, D, h, w)`` float16/bfloat16/float32/float64, any strides.
        segments: ``(B, H, W)`` integer segment ids in ``[0, N)``; negative ids are ignored.
        num_segments: N. Defaults to ``segments.max() + 1`` over the batch (one host sync).
        align_corners: as in ``F.interpolate``.

    Returns:
        ``(means, counts)``: means ``(B, N, D)`` in the features' dtype (accumulated in float32,
        float64 for float64 input); counts ``(B, N)`` int64 pixel counts. A segment with no pixels
        gets a zero row and count 0. Differentiable w.r.t. ``features``.

    Raises:
        ValueError / TypeError for bad shapes or dtypes; RuntimeError when an id is >= N.

    Example:
        >>> f = torch.randn(1, 8, 4, 4)
        >>> seg = torch.arange(16).view(1, 4, 4).repeat_interleave(4, 1).repeat_interleave(4, 2)
        >>> means, counts = superpixel_pool(f, seg)
        >>> means.shape, counts[0, :3].tolist()
        (torch.Size([1, 16, 8]), [16, 16, 16])
    """
    _check(features, segments)
    n = _num_segments(segments, num_segments)
    if has_op("superpixel_pool"):
        return torch.ops.noisyseg.superpixel_pool(features, segments, n, align_corners)
    return superpixel_pool_reference(features, segments, n, align_corners)


def _axis_taps(out_size: int, in_size: int, align_corners: bool, device: torch.device):
    """Per output index: the two input indices it reads and their weights (F.interpolate's rule)."""
    dst = torch.arange(out_size, dtype=torch.float64, device=device)
    if align_corners:
        src = dst * ((in_size - 1) / (out_size - 1)) if out_size > 1 else torch.zeros_like(dst)
    else:
        src = ((dst + 0.5) * (in_size / out_size) - 0.5).clamp_min(0)
    i0 = src.long().clamp_max(in_size - 1)
    i1 = torch.where(i0 < in_size - 1, i0 + 1, i0)
    l1 = src - i0
    return i0, i1, 1 - l1, l1


def superpixel_pool_reference(
    features: torch.Tensor,
    segments: torch.Tensor,
    num_segments: int | None = None,
    align_corners: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-torch :func:`superpixel_pool`: same arguments, results and autograd.

    Builds the sparse (segment x low-res cell) weight matrix from every pixel's four bilinear taps
    (``torch.unique`` over the keys), then one sparse-dense product; memory is O(B*H*W + nnz*D).
    """
    _check(features, segments)
    n = _num_segments(segments, num_segments)
    B, D, h, w = features.shape
    _, H, W = segments.shape
    device = features.device
    acc = torch.float64 if features.dtype == torch.float64 else torch.float32
    seg = segments.long()
    if seg.numel() > 0 and int(seg.max()) >= n:
        raise RuntimeError(f"superpixel_pool: segment id {int(seg.max())} is >= num_segments ({n})")
    y0, y1, wy0, wy1 = _axis_taps(H, h, align_corners, device)
    x0, x1, wx0, wx1 = _axis_taps(W, w, align_corners, device)
    b, y, x = torch.nonzero(seg >= 0, as_tuple=True)
    rows = b * n + seg[b, y, x]
    cells = torch.stack([y0[y] * w + x0[x], y0[y] * w + x1[x], y1[y] * w + x0[x], y1[y] * w + x1[x]], 1)
    weights = torch.stack([wy0[y] * wx0[x], wy0[y] * wx1[x], wy1[y] * wx0[x], wy1[y] * wx1[x]], 1)
    keys = (rows[:, None] * (h * w) + cells).reshape(-1)
    uniq, inverse = torch.unique(keys, return_inverse=True)
    a = torch.zeros(uniq.numel(), dtype=torch.float64, device=device).index_add_(0, inverse, weights.reshape(-1))
    row, cell = uniq // (h * w), uniq % (h * w)
    feat = features.permute(0, 2, 3, 1).reshape(B * h * w, D).to(acc)
    contrib = feat[(row // max(n, 1)) * (h * w) + cell] * a.to(acc)[:, None]
    sums = torch.zeros(B * n, D, dtype=acc, device=device).index_add(0, row, contrib)
    counts = torch.bincount(rows, minlength=B * n).view(B, n)
    means = sums.view(B, n, D) / counts.clamp_min(1).to(acc)[..., None]
    return means.to(features.dtype), counts
