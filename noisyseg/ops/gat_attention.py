"""Fused multi-head edge attention over graphs in CSR form (dot-product and additive GAT).

The compiled ops ``torch.ops.noisyseg.gat_attention`` and ``gat_attention_additive``
(csrc/ops/gat_attention.cpp) are used when registered; otherwise the pure-torch references
below, with the same semantics, run.
"""

from __future__ import annotations

import math

import torch

from noisyseg.ops._ext import has_op

__all__ = ["gat_attention", "gat_attention_additive", "gat_attention_reference", "gat_attention_additive_reference"]


def _check_graph(name: str, value: torch.Tensor, rowptr: torch.Tensor, col: torch.Tensor) -> None:
    if value.dim() != 3:
        raise ValueError(f"{name}: value must be [N, heads, Fv], got {tuple(value.shape)}")
    if rowptr.dim() != 1 or rowptr.numel() != value.shape[0] + 1:
        raise ValueError(f"{name}: rowptr must be [N + 1] = [{value.shape[0] + 1}], got {tuple(rowptr.shape)}")
    if col.dim() != 1:
        raise ValueError(f"{name}: col must be [E], got {tuple(col.shape)}")
    if rowptr.dtype != torch.int64 or col.dtype != torch.int64:
        raise TypeError(f"{name}: rowptr and col must be int64, got {rowptr.dtype} and {col.dtype}")


def gat_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    rowptr: torch.Tensor,
    col: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Multi-head dot-product attention restricted to a graph's edges, softmax and sum fused.

    ``out_i = sum_{j in N(i)} softmax_j(scale * <q_i, k_j>) v_j`` per head, where the neighbours of
    node i are ``col[rowptr[i]:rowptr[i+1]]`` (many small graphs batched block-diagonally). No
    ``(E, heads, F)`` tensor is formed, in the forward or the backward.

    Args:
        query: ``(N, heads, F)`` float16/bfloat16/float32/float64.
        key: ``(N, heads, F)``, same dtype.
        value: ``(N, heads, Fv)``, same dtype.
        rowptr: ``(N + 1,)`` int64 CSR row pointers (``rowptr[0] == 0``, non-decreasing).
        col: ``(E,)`` int64 neighbour ids in ``[0, N)``; duplicates count twice, no self-loops are added.
        scale: logit scale, default ``1 / sqrt(F)``.

    Returns:
        ``(N, heads, Fv)`` in the inputs' dtype (accumulated in float32, float64 for float64). A
        node without neighbours gets zeros. Differentiable w.r.t. query, key and value.

    Example:
        >>> q = k = v = torch.randn(3, 2, 4)
        >>> rowptr, col = torch.tensor([0, 2, 3, 3]), torch.tensor([1, 2, 0])
        >>> gat_attention(q, k, v, rowptr, col).shape
        torch.Size([3, 2, 4])
    """
    _check_graph("gat_attention", value, rowptr, col)
    if has_op("gat_attention"):
        return torch.ops.noisyseg.gat_attention(query, key, value, rowptr, col, scale)[0]
    return gat_attention_reference(query, key, value, rowptr, col, scale)


def gat_attention_additive(
    src_score: torch.Tensor,
    dst_score: torch.Tensor,
    value: torch.Tensor,
    rowptr: torch.Tensor,
    col: torch.Tensor,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """GAT's additive attention over a graph's edges, softmax and sum fused.

    ``out_i = sum_{j in N(i)} softmax_j(LeakyReLU(s_i + t_j)) v_j`` per head (``s``: src_score of
    the receiving node i, ``t``: dst_score of the neighbour j), graph as in :func:`gat_attention`.

    Args:
        src_score: ``(N, heads)`` float16/bfloat16/float32/float64.
        dst_score: ``(N, heads)``, same dtype.
        value: ``(N, heads, Fv)``, same dtype.
        rowptr: ``(N + 1,)`` int64 CSR row pointers.
        col: ``(E,)`` int64 neighbour ids in ``[0, N)``.
        negative_slope: LeakyReLU slope for negative inputs.

    Returns:
        ``(N, heads, Fv)`` in the inputs' dtype; zeros for nodes without neighbours.
        Differentiable w.r.t. both scores and value.
    """
    _check_graph("gat_attention_additive", value, rowptr, col)
    if has_op("gat_attention_additive"):
        return torch.ops.noisyseg.gat_attention_additive(src_score, dst_score, value, rowptr, col, negative_slope)[0]
    return gat_attention_additive_reference(src_score, dst_score, value, rowptr, col, negative_slope)


def _aggregate(logits: torch.Tensor, value: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """Edge softmax over each row's edges (max-shifted) and the weighted sum of neighbour values."""
    N, heads, Fv = value.shape
    acc = torch.float64 if value.dtype == torch.float64 else torch.float32
    logits = logits.to(acc)
    idx = row[:, None].expand(-1, heads)
    mx = torch.full((N, heads), float("-inf"), dtype=acc, device=value.device)
    mx = mx.scatter_reduce(0, idx, logits, "amax", include_self=True)
    p = torch.exp(logits - mx[row].detach())
    denom = torch.zeros(N, heads, dtype=acc, device=value.device).index_add(0, row, p)
    p = p / denom[row]
    out = torch.zeros(N, heads, Fv, dtype=acc, device=value.device)
    out = out.index_add(0, row, p[..., None] * value[col].to(acc))
    return out.to(value.dtype)


def _rows(rowptr: torch.Tensor, num_edges: int) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(rowptr.numel() - 1, device=rowptr.device), rowptr.diff(),
                                   output_size=num_edges)


def gat_attention_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    rowptr: torch.Tensor,
    col: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Pure-torch :func:`gat_attention` by message passing (forms ``(E, heads, F)`` tensors)."""
    _check_graph("gat_attention", value, rowptr, col)
    scale = 1.0 / math.sqrt(max(query.shape[-1], 1)) if scale is None else scale
    row = _rows(rowptr, col.numel())
    acc = torch.float64 if value.dtype == torch.float64 else torch.float32
    logits = scale * (query[row].to(acc) * key[col].to(acc)).sum(-1)
    return _aggregate(logits, value, row, col)


def gat_attention_additive_reference(
    src_score: torch.Tensor,
    dst_score: torch.Tensor,
    value: torch.Tensor,
    rowptr: torch.Tensor,
    col: torch.Tensor,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """Pure-torch :func:`gat_attention_additive` by message passing."""
    _check_graph("gat_attention_additive", value, rowptr, col)
    row = _rows(rowptr, col.numel())
    acc = torch.float64 if value.dtype == torch.float64 else torch.float32
    logits = torch.nn.functional.leaky_relu(src_score[row].to(acc) + dst_score[col].to(acc), negative_slope)
    return _aggregate(logits, value, row, col)
