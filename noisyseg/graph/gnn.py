"""Two-layer GAT and GCN with one set of parameters per graph, trained transductively.

Yi et al. train one network per image. Here every parameter tensor carries a leading graph axis
``G`` (``weight (G, in, out)``) and is applied with ``torch.baddbmm`` to the nodes padded per graph,
so a whole batch of images trains in one loop. The loss is the sum over graphs of each graph's
mean cross-entropy, so a graph's parameters receive exactly its own loss's gradient; Adam and
weight decay act elementwise, so training a batch equals training each image alone (up to
floating-point summation order). Every graph starts from the same initial parameters, drawn from
``seed``, so an image's result does not depend on which batch it lands in. Nodes live in the
padded layout of ``GraphBatch`` (graph g's nodes at ``g * max_nodes + l``), so a per-graph linear
map is a reshape and one ``baddbmm``. Built with ``num_graphs=1``, the same layers apply one set of
parameters to every graph of the batch (the correctors' ``share=true``).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from noisyseg.graph.adjacency import csr_rows
from noisyseg.graph.superpixel_graph import GraphBatch


class BatchedLinear(nn.Module):
    """``y = x W_g + b_g`` with the graph g of each node.

    Args:
        num_graphs: G. in_features, out_features: sizes.
        generator: draws the (shared) Glorot-uniform initial weight.
    """

    def __init__(self, num_graphs: int, in_features: int, out_features: int, generator: torch.Generator):
        super().__init__()
        bound = math.sqrt(6.0 / (in_features + out_features))
        w = (torch.rand(in_features, out_features, generator=generator) * 2 - 1) * bound
        self.weight = nn.Parameter(w.expand(num_graphs, -1, -1).clone())
        self.bias = nn.Parameter(torch.zeros(num_graphs, 1, out_features))

    def forward(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        """x ``(G * max_nodes, in)`` in the batch's padded layout -> ``(G * max_nodes, out)``."""
        padded = x.view(batch.num_graphs, batch.max_nodes, x.shape[1])
        if self.weight.shape[0] == batch.num_graphs:
            return torch.baddbmm(self.bias, padded, self.weight).view(x.shape[0], -1)
        return (torch.matmul(padded, self.weight) + self.bias).view(x.shape[0], -1)  # one set shared by all graphs


def _dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None) -> torch.Tensor:
    # A seeded mask (F.dropout draws from the global RNG, which would break determinism).
    if not training or p <= 0:
        return x
    keep = torch.rand(x.shape, generator=generator, device="cpu").to(x.device) >= p
    return x * keep / (1 - p)


class BatchedGATLayer(nn.Module):
    """Eq. 5-7: e_ij = φ(v_i)·ψ(v_j) per head, softmax over row i's edges, σ(Σ_j α_ij W v_j).

    The three projections φ, ψ and W of all heads are one batched matmul. Heads are concatenated
    (``concat=True``, hidden layers) or averaged (output layer, as in the GAT paper).
    """

    def __init__(self, num_graphs: int, in_features: int, out_features: int, heads: int, concat: bool,
                 generator: torch.Generator):
        super().__init__()
        self.heads, self.out_features, self.concat = heads, out_features, concat
        self.proj = BatchedLinear(num_graphs, in_features, 3 * heads * out_features, generator)

    def forward(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        from noisyseg.ops.gat_attention import gat_attention

        qkv = self.proj(x, batch).view(x.shape[0], 3, self.heads, self.out_features)
        q, k, v = qkv.unbind(1)
        out = gat_attention(q.contiguous(), k.contiguous(), v.contiguous(), batch.rowptr, batch.col)
        return out.reshape(x.shape[0], -1) if self.concat else out.mean(1)


class BatchedGAT(nn.Module):
    """Two GAT layers: ``heads`` x ``hidden`` concatenated with ELU, then C classes averaged over
    ``out_heads`` heads. forward(x (N, D), batch) -> logits (N, C)."""

    def __init__(self, num_graphs: int, in_features: int, num_classes: int, hidden: int = 8, heads: int = 4,
                 out_heads: int = 1, dropout: float = 0.0, generator: torch.Generator | None = None):
        super().__init__()
        self.generator = generator or torch.Generator().manual_seed(0)
        self.dropout = dropout
        self.layer1 = BatchedGATLayer(num_graphs, in_features, hidden, heads, True, self.generator)
        self.layer2 = BatchedGATLayer(num_graphs, hidden * heads, num_classes, out_heads, False, self.generator)

    def forward(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        x = _dropout(x, self.dropout, self.training, self.generator)
        h = F.elu(self.layer1(x, batch))
        h = _dropout(h, self.dropout, self.training, self.generator)
        return self.layer2(h, batch)


def gcn_coefficients(rowptr: torch.Tensor, col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric normalisation D^-1/2 A D^-1/2 of a CSR graph (self-loops already in it):
    returns each edge's row and coefficient ``1 / sqrt(deg_i deg_j)`` (deg = row length)."""
    row = csr_rows(rowptr)
    deg = rowptr.diff().float().clamp_min(1)
    inv = deg.rsqrt()
    return row, inv[row] * inv[col]


class BatchedGCN(nn.Module):
    """Kipf & Welling's two-layer GCN, Z = Â ReLU(Â X W1) W2, with per-graph W1, W2 (the paper's
    ablation against the GAT). forward(x (N, D), batch) -> logits (N, C)."""

    def __init__(self, num_graphs: int, in_features: int, num_classes: int, hidden: int = 64, dropout: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.generator = generator or torch.Generator().manual_seed(0)
        self.dropout = dropout
        self.lin1 = BatchedLinear(num_graphs, in_features, hidden, self.generator)
        self.lin2 = BatchedLinear(num_graphs, hidden, num_classes, self.generator)
        self._coef = None

    def propagate(self, h: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        if self._coef is None or self._coef[0] is not batch:
            self._coef = (batch, *gcn_coefficients(batch.rowptr, batch.col))
        _, row, coef = self._coef
        return torch.zeros_like(h).index_add(0, row, coef[:, None] * h[batch.col])

    def forward(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        x = _dropout(x, self.dropout, self.training, self.generator)
        h = F.relu(self.propagate(self.lin1(x, batch), batch))
        h = _dropout(h, self.dropout, self.training, self.generator)
        return self.propagate(self.lin2(h, batch), batch)


def train_transductive(model: nn.Module, batch: GraphBatch, epochs: int = 100, lr: float = 0.01,
                       weight_decay: float = 5e-4) -> torch.Tensor:
    """Fits ``model`` on the labelled nodes (``batch.labels >= 0``) with cross-entropy (eq. 9),
    full-batch Adam; returns the final eval-mode logits ``(N, C)`` for every node (detached)."""
    labelled = torch.nonzero((batch.labels >= 0) & batch.real).flatten()  # once, not per step
    target = batch.labels[labelled]
    owner = batch.graph_index[labelled]
    per_graph = torch.bincount(owner, minlength=batch.num_graphs).clamp_min(1).float()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        logits = model(batch.x, batch)
        loss = F.cross_entropy(logits[labelled], target, reduction="none")
        # Sum of per-graph means: each graph's parameters get its own loss's gradient only.
        (torch.zeros_like(per_graph).index_add(0, owner, loss) / per_graph).sum().backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return model(batch.x, batch)


def train_supervised(model: nn.Module, x: torch.Tensor, batch: GraphBatch, counts: torch.Tensor,
                     epochs: int = 200, lr: float = 0.01, weight_decay: float = 5e-4,
                     progress: Callable[[Iterable[int]], Iterable[int]] = iter) -> float:
    """Fits ``model`` (one set of parameters for every graph) to per-node class counts with
    full-batch Adam: the cross-entropy of every counted pixel against its node's prediction,
    averaged over pixels (a node's target is the distribution of its pixels, so mixed nodes are
    learnt as mixed, not as their majority).

    Args:
        x: ``(N, D)`` node inputs in the batch's padded layout.
        counts: ``(N, C)`` float, e.g. how many of the node's hole pixels are truly each class.
        progress: wraps the epochs (a progress bar).
    Returns the last epoch's loss; leaves the model in eval mode.
    """
    sel = torch.nonzero(counts.sum(1) > 0).flatten()
    counts = counts[sel] / counts[sel].sum()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    loss = torch.zeros(())
    for _ in progress(range(epochs)):
        opt.zero_grad(set_to_none=True)
        loss = -(counts * F.log_softmax(model(x, batch)[sel], 1)).sum()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())
