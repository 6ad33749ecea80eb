"""Spatial adjacency of a segment map, and CSR helpers shared by the graph code.

Two segments are adjacent when some pixel of one and some pixel of the other touch across a
4-connected boundary (left-right or up-down neighbours). The result is symmetric, without
duplicates or self-loops, as CSR (``rowptr (N + 1,)``, ``col (E,)`` int64) with each row's
columns sorted.
"""

from __future__ import annotations

import torch


def csr_from_edges(row: torch.Tensor, col: torch.Tensor, num_nodes: int,
                   dedup: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorts directed edges by (row, col) into CSR.

    Args:
        row, col: ``(E,)`` int64 endpoints in ``[0, num_nodes)``.
        num_nodes: N.
        dedup: drop repeated (row, col) pairs.

    Returns:
        ``rowptr (N + 1,)``, ``col (E',)`` and ``order (E',)``: for each CSR edge, the index of the
        input edge it came from (the first one when duplicates were dropped), so edge attributes
        can follow with ``attr[order]``.
    """
    row, col = row.long(), col.long()
    key = row * max(num_nodes, 1) + col
    if dedup:
        uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
        first = torch.full((uniq.numel(),), key.numel(), dtype=torch.long, device=key.device)
        order = first.scatter_reduce(0, inverse, torch.arange(key.numel(), device=key.device), "amin")
        key = uniq
    else:
        key, order = torch.sort(key, stable=True)
    r = key // max(num_nodes, 1)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=key.device)
    rowptr[1:] = torch.cumsum(torch.bincount(r, minlength=num_nodes), 0)
    return rowptr, key % max(num_nodes, 1), order


def csr_rows(rowptr: torch.Tensor) -> torch.Tensor:
    """The row (receiving node) of every CSR edge, ``(E,)`` int64."""
    counts = rowptr.diff()
    return torch.repeat_interleave(torch.arange(counts.numel(), device=rowptr.device), counts)


def segment_adjacency(segments: torch.Tensor, num_segments: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric 4-connected adjacency of a segment map, as CSR.

    Args:
        segments: ``(H, W)`` integer ids in ``[0, N)``.
        num_segments: N, default ``segments.max() + 1``.

    Returns:
        ``rowptr (N + 1,)`` and ``col (E,)`` int64; ``j in col[rowptr[i]:rowptr[i+1]]`` iff
        segments i != j share a horizontal or vertical pixel boundary. Sorted columns per row.

    Example:
        >>> seg = torch.tensor([[0, 0, 1], [2, 2, 1]])
        >>> rowptr, col = segment_adjacency(seg)
        >>> rowptr.tolist(), col.tolist()
        ([0, 2, 4, 6], [1, 2, 0, 2, 0, 1])
    """
    if segments.dim() != 2:
        raise ValueError(f"segment_adjacency: segments must be (H, W), got {tuple(segments.shape)}")
    seg = segments.long()
    n = int(seg.max()) + 1 if num_segments is None else int(num_segments)
    a = torch.cat([seg[:, :-1].reshape(-1), seg[:-1, :].reshape(-1)])
    b = torch.cat([seg[:, 1:].reshape(-1), seg[1:, :].reshape(-1)])
    cross = a != b
    a, b = a[cross], b[cross]
    rowptr, col, _ = csr_from_edges(torch.cat([a, b]), torch.cat([b, a]), n)
    return rowptr, col


def add_self_loops(rowptr: torch.Tensor, col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same CSR graph with an edge i -> i added to every row that lacks one."""
    n = rowptr.numel() - 1
    row = csr_rows(rowptr)
    loops = torch.arange(n, device=col.device)
    new_rowptr, new_col, _ = csr_from_edges(torch.cat([row, loops]), torch.cat([col, loops]), n)
    return new_rowptr, new_col
