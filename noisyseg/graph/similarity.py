"""Edge weights and pruning of Yi et al., "Learning from Pixel-Level Label Noise", eq. 3-4.

Eq. 3: on the spatial edges only, ``w_ij = exp(-||v_i - v_j||^2 / (2h))`` with h the feature
dimension (non-adjacent pairs have weight 0 and are not edges).

Eq. 4, as we read it::

    a_ij = 0  if  w_ij < γ  and  w_ij < max_{k in N_s(i)} w_ik,   else 1,
    γ = μ(W_s) - σ(W_s).

- "w_ij lower than both γ and the best neighbour weight" removes the edge; so an edge survives
  when it is at least γ, *or* when j is i's most similar spatial neighbour. Every node with a
  spatial neighbour therefore keeps at least one edge (its best), and no node becomes isolated
  by pruning.
- μ and σ are taken over the weights of the spatial edges of the image (the paper says "we will
  ignore their semantic relationship" for non-adjacent pairs; counting the N² - E zeros of W_s
  would put γ below 0 and prune nothing). σ is the population standard deviation. Each undirected
  edge appears twice, which changes neither μ nor σ.
- The max is over i's own neighbours, so the rule is per row: a_ij can be 1 while a_ji is 0
  (j is i's best neighbour, i is not j's). We keep the literal, directed result by default
  (``symmetric=False``): in the GAT, row i lists whom node i listens to. ``symmetric=True``
  keeps an edge in both directions when either direction keeps it.
"""

from __future__ import annotations

import torch

from noisyseg.graph.adjacency import csr_from_edges, csr_rows


def similarity_weights(features: torch.Tensor, rowptr: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """Eq. 3 on every CSR edge.

    Args:
        features: ``(N, D)`` float node features v_i.
        rowptr, col: CSR graph.

    Returns:
        ``(E,)`` float32 weights in ``(0, 1]``.
    """
    row = csr_rows(rowptr)
    v = features.float()
    d2 = (v[row] - v[col]).pow(2).sum(-1)
    return torch.exp(-d2 / (2.0 * max(v.shape[1], 1)))


def prune_threshold(weights: torch.Tensor) -> float:
    """γ = mean - std (population) of the edge weights; ``-inf`` for a graph without edges."""
    if weights.numel() == 0:
        return float("-inf")
    w = weights.double()
    return float(w.mean() - w.std(unbiased=False))


def prune_mask(rowptr: torch.Tensor, col: torch.Tensor, weights: torch.Tensor,
               gamma: float | None = None) -> torch.Tensor:
    """Eq. 4: ``(E,)`` bool, True for edges kept (w_ij >= γ or w_ij is row i's maximum)."""
    n = rowptr.numel() - 1
    row = csr_rows(rowptr)
    gamma = prune_threshold(weights) if gamma is None else gamma
    best = torch.full((n,), float("-inf"), dtype=weights.dtype, device=weights.device)
    best = best.scatter_reduce(0, row, weights, "amax", include_self=True)
    return (weights >= gamma) | (weights >= best[row])


def prune_edges(rowptr: torch.Tensor, col: torch.Tensor, weights: torch.Tensor, symmetric: bool = False,
                gamma: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Applies eq. 4 and returns the kept graph ``(rowptr, col, weights)``.

    Args:
        rowptr, col: symmetric CSR spatial graph; weights: its ``(E,)`` eq. 3 weights.
        symmetric: keep an edge both ways when either direction survives (see the module doc).
        gamma: override γ (default mean - std of ``weights``).
    """
    n = rowptr.numel() - 1
    keep = prune_mask(rowptr, col, weights, gamma)
    row = csr_rows(rowptr)
    if symmetric:
        # The graph is symmetric, so the reverse of edge (i, j) exists; mark it via its key.
        key = row * max(n, 1) + col
        kept_rev = torch.isin(key, (col * max(n, 1) + row)[keep])
        keep = keep | kept_rev
    new_rowptr, new_col, order = csr_from_edges(row[keep], col[keep], n, dedup=False)
    return new_rowptr, new_col, weights[keep][order]
