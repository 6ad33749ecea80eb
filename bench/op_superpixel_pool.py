"""Benchmark: superpixel_pool vs bilinear upsample (F.interpolate) + scatter mean.

Case: B=4, D=256 features at 64x64, segments at 512x512 (N=1000 superpixels: a 25x40 grid whose
boundaries are jittered by smooth random offsets, SLIC-like). Worst case ("random ids"): every
pixel takes a random segment id, so no row holds a run of one segment for the kernel to sum at once. The peer upsamples to [B, D, H, W]
and averages per segment with ``torch_scatter.scatter_mean`` when torch_scatter imports, else
with torch's ``index_add`` per image and a division by the counts.
``run(device, repeats)`` returns one dict per row;
``python bench/op_superpixel_pool.py`` prints the CPU rows. Peak memory follows bench/_peak.py:
on CPU, peak-RSS growth of one step in a fresh subprocess per side, after a clear_refs reset that
follows imports and input creation; on CUDA, max_memory_allocated beyond the inputs.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

import _peak

_peak.load_dev_libs()

from noisyseg.ops.superpixel_pool import superpixel_pool  # noqa: E402

try:
    from torch_scatter import scatter_mean
except ImportError:
    scatter_mean = None

B, D, h, w, H, W, N = 4, 256, 64, 64, 512, 512, 1000
SHAPE = f"features [{B},{D},{h},{w}] -> segments [{B},{H},{W}], N={N}"


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


def random_segments(device: str, seed: int = 0) -> torch.Tensor:
    """Incoherent ids: each pixel's segment drawn uniformly from N (the kernel's worst case)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, N, (B, H, W), generator=g).to(device)


def _inputs(device: str, grad: bool, layout: str = "slic"):
    g = torch.Generator().manual_seed(1)
    features = torch.randn(B, D, h, w, generator=g).to(device).requires_grad_(grad)
    return features, (make_segments(device) if layout == "slic" else random_segments(device))


def peer_name() -> str:
    if scatter_mean is not None:
        return "F.interpolate + torch_scatter.scatter_mean"
    return "F.interpolate + per-image index_add mean (torch_scatter not installed)"


def peer(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    up = F.interpolate(features, size=segments.shape[-2:], mode="bilinear", align_corners=False)
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
    return superpixel_pool(features, segments, N)[0]


def build_ours(device: str, backward: bool, layout: str = "slic"):
    return _peak.grad_step(ours, _inputs(device, backward, layout), backward)


def build_peer(device: str, backward: bool, layout: str = "slic"):
    return _peak.grad_step(peer, _inputs(device, backward, layout), backward)


def run(device: str, repeats: int) -> list[dict]:
    rows = _peak.forward_backward_rows("superpixel_pool", "op_superpixel_pool", device, repeats, SHAPE, peer_name())
    return rows + _peak.forward_backward_rows("superpixel_pool", "op_superpixel_pool", device, repeats, SHAPE,
                                              peer_name(), extra=("random",), case=", random ids")


if __name__ == "__main__":
    from noisyseg.ops import has_op

    print(f"superpixel_pool kernel compiled: {has_op('superpixel_pool')}; threads: {torch.get_num_threads()}")
    _peak.print_rows(run("cpu", int(os.environ.get("REPEATS", "3"))))
