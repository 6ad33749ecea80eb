"""Benchmark: gat_attention (fused edge softmax + aggregation) vs message passing.

Case: 16 graphs x 1000 nodes batched block-diagonally, each node linked to its 6 nearest
neighbours (kNN over random points in the unit square), 8 heads x 64 features. The peer is the
same math as GATConv-style message passing: with torch_geometric when it imports
(``torch_geometric.utils.softmax`` + ``scatter``), else the equivalent pure torch (gather q_i,
k_j per edge -> [E, heads, F] -> dot -> segment softmax via scatter_reduce amax / index_add sum ->
multiply v_j -> index_add). The printed peer name says which ran. ``run(device, repeats)`` returns
one dict per row; ``python bench/op_gat_attention.py`` prints the CPU rows. Peak memory follows
bench/_peak.py: on CPU, peak-RSS growth of one step in a fresh subprocess per side, after a
clear_refs reset that follows imports and input creation; on CUDA, max_memory_allocated beyond
the inputs.
"""

from __future__ import annotations

import os

import torch

import _peak

_peak.load_dev_libs()

from noisyseg.ops.gat_attention import gat_attention  # noqa: E402

try:
    from torch_geometric.utils import scatter, softmax
except ImportError:
    scatter = softmax = None

GRAPHS, NODES, K, HEADS, F = 16, 1000, 6, 8, 64
SHAPE = f"{GRAPHS} graphs x {NODES} nodes, kNN k={K}, heads={HEADS}, F=Fv={F}"


def make_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR of GRAPHS disjoint kNN graphs (each node -> its K nearest other nodes)."""
    g = torch.Generator().manual_seed(seed)
    cols = []
    for b in range(GRAPHS):
        pts = torch.rand(NODES, 2, generator=g)
        dist = torch.cdist(pts, pts).fill_diagonal_(float("inf"))
        cols.append(dist.topk(K, largest=False).indices + b * NODES)
    col = torch.cat(cols).reshape(-1)
    rowptr = torch.arange(0, GRAPHS * NODES * K + 1, K)
    return rowptr, col


def _inputs(device: str, grad: bool):
    g = torch.Generator().manual_seed(1)
    n = GRAPHS * NODES
    qkv = [torch.randn(n, HEADS, F, generator=g).to(device).requires_grad_(grad) for _ in range(3)]
    rowptr, col = make_graph()
    return (*qkv, rowptr.to(device), col.to(device))


def peer_name() -> str:
    if softmax is not None:
        return "torch_geometric message passing (utils.softmax + scatter)"
    return "pure-torch message passing (torch_geometric not installed)"


def peer(q, k, v, rowptr, col):
    n = q.shape[0]
    row = torch.repeat_interleave(torch.arange(n, device=q.device), rowptr.diff(), output_size=col.numel())
    logits = (q[row] * k[col]).sum(-1) / F**0.5  # [E, heads], from [E, heads, F] gathers
    if softmax is not None:
        alpha = softmax(logits, row, num_nodes=n)
        return scatter(alpha[..., None] * v[col], row, dim=0, dim_size=n, reduce="sum")
    idx = row[:, None].expand(-1, logits.shape[1])
    mx = torch.full((n, logits.shape[1]), float("-inf"), device=q.device)
    mx = mx.scatter_reduce(0, idx, logits.detach(), "amax", include_self=True)
    p = torch.exp(logits - mx[row])
    p = p / torch.zeros_like(mx).index_add(0, row, p)[row]
    return torch.zeros_like(v).index_add(0, row, p[..., None] * v[col])


def ours(q, k, v, rowptr, col):
    return gat_attention(q, k, v, rowptr, col)


def build_ours(device: str, backward: bool):
    return _peak.grad_step(ours, _inputs(device, backward), backward)


def build_peer(device: str, backward: bool):
    return _peak.grad_step(peer, _inputs(device, backward), backward)


def run(device: str, repeats: int) -> list[dict]:
    return _peak.forward_backward_rows("gat_attention", "op_gat_attention", device, repeats, SHAPE, peer_name())


if __name__ == "__main__":
    from noisyseg.ops import has_op

    print(f"gat_attention kernel compiled: {has_op('gat_attention')}; threads: {torch.get_num_threads()}")
    _peak.print_rows(run("cpu", int(os.environ.get("REPEATS", "5"))))
