"""Bench entropy_rank against the plain-torch pipeline it replaces.

Peer: softmax -> entropy (-sum p log(p + 1e-10), as U2PL writes it) -> torch.quantile over the
valid pixels (exact kthvalue pair above torch.quantile's 2**24 cap) -> argsort(descending, stable)
scattered into per-class ranks (uint8). Ours: one ``noisyseg.ops.entropy_rank`` call.
Run alone: ``python bench/op_entropy_rank.py [cpu|cuda] [repeats]``.
"""

from __future__ import annotations

import sys

import torch

import _peak

_peak.load_dev_libs()

from noisyseg.ops import entropy_rank  # noqa: E402
from noisyseg.ops.entropy_rank import exact_quantile  # noqa: E402

CASES = {"voc-aug 8x21x512x512": (8, 21, 512, 512), "cityscapes 4x19x1024x2048": (4, 19, 1024, 2048)}
QUANTILE = 0.8
PEAK_BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12, "A100": 2.0e12}  # bytes/s, by device name


def _inputs(shape, device):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g) * 2).to(device)
    valid = (torch.rand(shape[0], shape[2], shape[3], generator=g) > 0.1).to(device)
    return x, valid


def peer(x, valid, q):
    p = torch.softmax(x, dim=1)
    entropy = -(p * torch.log(p + 1e-10)).sum(dim=1)
    values = entropy[valid]
    threshold = torch.quantile(values, q) if values.numel() <= 2**24 else exact_quantile(values, q)
    order = torch.argsort(p, dim=1, descending=True, stable=True)
    ranks = torch.arange(x.shape[1], device=x.device, dtype=torch.uint8).view(1, -1, 1, 1).expand_as(order)
    rank = torch.empty(order.shape, dtype=torch.uint8, device=x.device).scatter_(1, order, ranks.contiguous())
    return entropy, threshold, rank


def build_ours(shape, device):
    x, valid = _inputs(shape, device)
    return lambda: entropy_rank(x, True, valid, QUANTILE)


def build_peer(shape, device):
    x, valid = _inputs(shape, device)
    return lambda: peer(x, valid, QUANTILE)


def _bytes_moved(shape, element_size):
    b, c, h, w = shape
    pixels = b * h * w
    # x read once, rank (1 B) and entropy (4 B) written, valid (1 B) + entropy read per select pass.
    return pixels * c * (element_size + 1) + pixels * 4 + 3 * pixels * 5


def run(device: str, repeats: int) -> list[dict]:
    rows = []
    for case, shape in CASES.items():
        ours_fn, peer_fn = build_ours(shape, device), build_peer(shape, device)
        ours, ref = ours_fn(), peer_fn()
        # Ranks may differ where distinct logits round to equal probabilities (the peer ranks p).
        agree = (ours.rank == ref[2]).float().mean().item()
        assert agree > 0.999 and torch.allclose(ours.entropy, ref[0], atol=1e-4), "entropy_rank: peer disagrees"
        ours_ms = _peak.median_ms(ours_fn, device, repeats)
        peer_ms = _peak.median_ms(peer_fn, device, repeats)
        del ours_fn, peer_fn, ours, ref
        row = dict(op="entropy_rank", case=case, shape="x".join(map(str, shape)) + f" float32 q={QUANTILE}",
                   ours_ms=ours_ms, peer_ms=peer_ms, ratio=peer_ms / ours_ms,
                   ours_peak_mb=_peak.peak_mb(device, "op_entropy_rank", "build_ours", (shape, device)),
                   peer_peak_mb=_peak.peak_mb(device, "op_entropy_rank", "build_peer", (shape, device)),
                   peer="softmax+entropy+torch.quantile+argsort")
        if device.startswith("cuda"):
            name = torch.cuda.get_device_name()
            peak = next((bw for key, bw in PEAK_BANDWIDTH.items() if key in name), 4.8e12)
            row["bandwidth_share"] = _bytes_moved(shape, 4) / (ours_ms * 1e-3) / peak
        rows.append(row)
    return rows


if __name__ == "__main__":
    _peak.print_rows(run(sys.argv[1] if len(sys.argv) > 1 else "cpu", int(sys.argv[2]) if len(sys.argv) > 2 else 3))
