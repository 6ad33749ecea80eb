"""Benchmark: gat_attention (fused edge softmax + aggregation) vs message passing.

Case: 16 graphs x 1000 nodes batched block-diagonally, each node linked to its 6 nearest
neighbours (kNN over random points in the unit square), 8 heads x 64 features. The peer is the
same math as GATConv-style message passing: with torch_geometric when it imports
(``torch_geometric.utils.softmax`` + ``scatter``), else the equivalent pure torch (gather q_i,
k_j per edge -> [E, heads, F] -> dot -> segment softmax via scatter_reduce amax / index_add sum ->
multiply v_j -> index_add). The printed peer name says which ran. ``run(device, repeats)`` returns
one dict per row; ``python bench/op_gat_attention.py`` prints the CPU rows.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

GRAPHS, NODES, K, HEADS, F = 16, 1000, 6, 8, 64
SHAPE = f"{GRAPHS} graphs x {NODES} nodes, kNN k={K}, heads={HEADS}, F=Fv={F}"


def _load_dev_libs() -> None:
    # Same hook as tests/conftest.py: out-of-tree kernel builds, NOISYSEG_DEV_LIBS=a.so:b.so
    for lib in filter(None, os.environ.get("NOISYSEG_DEV_LIBS", "").split(":")):
        torch.ops.load_library(lib)


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


def _has_pyg() -> bool:
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return False
    return True


def peer_name() -> str:
    if _has_pyg():
        return "torch_geometric message passing (utils.softmax + scatter)"
    return "pure-torch message passing (torch_geometric not installed)"


def peer(q, k, v, rowptr, col):
    n = q.shape[0]
    row = torch.repeat_interleave(torch.arange(n, device=q.device), rowptr.diff(), output_size=col.numel())
    logits = (q[row] * k[col]).sum(-1) / F**0.5  # [E, heads], from [E, heads, F] gathers
    if _has_pyg():
        from torch_geometric.utils import scatter, softmax

        alpha = softmax(logits, row, num_nodes=n)
        return scatter(alpha[..., None] * v[col], row, dim=0, dim_size=n, reduce="sum")
    idx = row[:, None].expand(-1, logits.shape[1])
    mx = torch.full((n, logits.shape[1]), float("-inf"), device=q.device)
    mx = mx.scatter_reduce(0, idx, logits.detach(), "amax", include_self=True)
    p = torch.exp(logits - mx[row])
    p = p / torch.zeros_like(mx).index_add(0, row, p)[row]
    return torch.zeros_like(v).index_add(0, row, p[..., None] * v[col])


def ours(q, k, v, rowptr, col):
    from noisyseg.ops.gat_attention import gat_attention

    return gat_attention(q, k, v, rowptr, col)


def _step(fn, inputs, backward: bool) -> None:
    out = fn(*inputs)
    if backward:
        out.sum().backward()
        for x in inputs[:3]:
            x.grad = None


def _time(fn, device: str, repeats: int, backward: bool) -> float:
    inputs = _inputs(device, backward)
    _step(fn, inputs, backward)  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.set_grad_enabled(backward):
            _step(fn, inputs, backward)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _peak_mb(side: str, device: str, backward: bool) -> float:
    if device == "cuda":
        inputs = _inputs(device, backward)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.set_grad_enabled(backward):
            _step(ours if side == "ours" else peer, inputs, backward)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # Through a small launcher process: a child exec'd straight from this (large) process would
    # start with our ru_maxrss as its own high-water mark and hide its growth.
    launch = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    cmd = [sys.executable, "-c", launch, sys.executable, os.path.abspath(__file__), "--peak", side, str(int(backward))]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"]


def _peak_child(side: str, backward: bool) -> None:
    _load_dev_libs()
    import noisyseg.ops.gat_attention  # noqa: F401  (imports before the baseline)

    inputs = _inputs("cpu", backward)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.set_grad_enabled(backward):
        _step(ours if side == "ours" else peer, inputs, backward)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": (peak - base) / 1024}))


def run(device: str, repeats: int) -> list[dict]:
    rows = []
    for backward in (False, True):
        ours_ms = _time(ours, device, repeats, backward)
        peer_ms = _time(peer, device, repeats, backward)
        rows.append(dict(
            op="gat_attention", case="forward+backward" if backward else "forward", shape=SHAPE,
            ours_ms=ours_ms, peer_ms=peer_ms, ratio=peer_ms / ours_ms,
            ours_peak_mb=_peak_mb("ours", device, backward), peer_peak_mb=_peak_mb("peer", device, backward),
            peer=peer_name(),
        ))
    return rows


if __name__ == "__main__":
    _load_dev_libs()
    if len(sys.argv) > 1 and sys.argv[1] == "--peak":
        _peak_child(sys.argv[2], bool(int(sys.argv[3])))
        sys.exit(0)
    from noisyseg.ops import has_op

    print(f"gat_attention kernel compiled: {has_op('gat_attention')}; threads: {torch.get_num_threads()}")
    for r in run("cpu", int(os.environ.get("REPEATS", "5"))):
        print(f"{r['op']:14s} {r['case']:17s} ours {r['ours_ms']:8.1f} ms  peer {r['peer_ms']:8.1f} ms  "
              f"x{r['ratio']:5.1f}  peak ours {r['ours_peak_mb']:6.1f} MB  peer {r['peer_peak_mb']:6.1f} MB  "
              f"[{r['shape']}; peer: {r['peer']}]")
