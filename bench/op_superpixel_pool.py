"""Benchmark: superpixel_pool vs bilinear upsample (F.interpolate) + scatter mean.

Case: B=4, D=256 features at 64x64, segments at 512x512 (N=1000 superpixels: a 25x40 grid whose
boundaries are jittered by smooth random offsets, SLIC-like). The peer upsamples to [B, D, H, W]
and averages per segment with ``torch_scatter.scatter_mean`` when torch_scatter imports, else
with torch's ``index_add`` per image and a division by the counts.
``run(device, repeats)`` returns one dict per row;
``python bench/op_superpixel_pool.py`` prints the CPU rows. Peak memory on CPU is measured in a
fresh subprocess per side (ru_maxrss growth after imports and input creation).
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
import torch.nn.functional as F

B, D, h, w, H, W, N = 4, 256, 64, 64, 512, 512, 1000
SHAPE = f"features [{B},{D},{h},{w}] -> segments [{B},{H},{W}], N={N}"


def _load_dev_libs() -> None:
    # Same hook as tests/conftest.py: out-of-tree kernel builds, NOISYSEG_DEV_LIBS=a.so:b.so
    for lib in filter(None, os.environ.get("NOISYSEG_DEV_LIBS", "").split(":")):
        torch.ops.load_library(lib)


def make_segments(device: str, seed: int = 0) -> torch.Tensor:
    """SLIC-like map: a 25x40 grid of blocks whose boundaries wander smoothly (std ~4 pixels)."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = 25, 40
    maps = []
    for _ in range(B):
        smooth = lambda n: F.avg_pool1d(torch.randn(1, 1, n + 31, generator=g), 32, 1).view(n) * 4 * 32**0.5  # std ~4 px
        y = torch.arange(H)[:, None] + smooth(W).round().long()[None, :]
        x = torch.arange(W)[None, :] + smooth(H).round().long()[:, None]
        y, x = y.clamp(0, H - 1), x.clamp(0, W - 1)
        maps.append((y * rows // H) * cols + (x * cols // W))
    return torch.stack(maps).to(device)


def _inputs(device: str, grad: bool):
    g = torch.Generator().manual_seed(1)
    features = torch.randn(B, D, h, w, generator=g).to(device).requires_grad_(grad)
    return features, make_segments(device)


def peer_name() -> str:
    try:
        import torch_scatter  # noqa: F401

        return "F.interpolate + torch_scatter.scatter_mean"
    except ImportError:
        return "F.interpolate + per-image index_add mean (torch_scatter not installed)"


def peer(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    up = F.interpolate(features, size=segments.shape[-2:], mode="bilinear", align_corners=False)
    try:
        from torch_scatter import scatter_mean
    except ImportError:
        scatter_mean = None
    if scatter_mean is not None:
        idx = segments.flatten(1)[:, None, :].expand(-1, features.shape[1], -1)  # a view, no copy
        return scatter_mean(up.flatten(2), idx, dim=2, dim_size=N).transpose(1, 2)
    # The fastest pure-torch variant we measured (scatter_reduce "mean" over an expanded index was
    # slower): index_add along the pixel axis of each image's [D, H*W] view, then divide.
    sums, counts = [], []
    for b in range(features.shape[0]):
        seg = segments[b].flatten()
        sums.append(up.new_zeros(features.shape[1], N).index_add(1, seg, up[b].flatten(1)))
        counts.append(torch.bincount(seg, minlength=N))
    return torch.stack(sums).transpose(1, 2) / torch.stack(counts).clamp_min(1)[..., None]


def ours(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    from noisyseg.ops.superpixel_pool import superpixel_pool

    return superpixel_pool(features, segments, N)[0]


def _step(fn, features, segments, backward: bool) -> None:
    out = fn(features, segments)
    if backward:
        out.sum().backward()
        features.grad = None


def _time(fn, device: str, repeats: int, backward: bool) -> float:
    features, segments = _inputs(device, backward)
    _step(fn, features, segments, backward)  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.set_grad_enabled(backward):
            _step(fn, features, segments, backward)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _peak_mb(side: str, device: str, backward: bool) -> float:
    if device == "cuda":
        features, segments = _inputs(device, backward)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.set_grad_enabled(backward):
            _step(ours if side == "ours" else peer, features, segments, backward)
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
    import noisyseg.ops.superpixel_pool  # noqa: F401  (imports before the baseline)

    features, segments = _inputs("cpu", backward)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.set_grad_enabled(backward):
        _step(ours if side == "ours" else peer, features, segments, backward)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": (peak - base) / 1024}))


def run(device: str, repeats: int) -> list[dict]:
    rows = []
    for backward in (False, True):
        ours_ms = _time(ours, device, repeats, backward)
        peer_ms = _time(peer, device, repeats, backward)
        rows.append(dict(
            op="superpixel_pool", case="forward+backward" if backward else "forward", shape=SHAPE,
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

    print(f"superpixel_pool kernel compiled: {has_op('superpixel_pool')}; threads: {torch.get_num_threads()}")
    for r in run("cpu", int(os.environ.get("REPEATS", "3"))):
        print(f"{r['op']:16s} {r['case']:17s} ours {r['ours_ms']:9.1f} ms  peer {r['peer_ms']:9.1f} ms  "
              f"x{r['ratio']:6.1f}  peak ours {r['ours_peak_mb']:7.1f} MB  peer {r['peer_peak_mb']:7.1f} MB  "
              f"[{r['shape']}; peer: {r['peer']}]")
