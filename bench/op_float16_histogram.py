"""Bench float16_histogram_ against the plain-torch histogram it replaces.

Peer: float16 sort keys, a combined (group, key) bin index with invalid entries sent to a spare
bin, and one torch.bincount (the pure-torch reference). Ours: one in-place
``noisyseg.ops.float16_histogram_`` call into a kept counts tensor. Values: a batch of float16
probabilities of each pixel's label, grouped by the label (confident learning's statistics).
Run alone: ``python bench/op_float16_histogram.py [cpu|cuda] [repeats]``.
"""

from __future__ import annotations

import sys

import torch

import _peak

_peak.load_dev_libs()

from noisyseg.ops import float16_histogram_, float16_histogram_reference_  # noqa: E402

CASES = {"camvid batch 8x360x480, 11 groups": (8, 360, 480, 11), "cityscapes 4x1024x2048, 19 groups": (4, 1024, 2048, 19)}


def _inputs(shape, device):
    b, h, w, groups = shape
    g = torch.Generator().manual_seed(0)
    values = torch.rand(b, h, w, generator=g).half().to(device)
    labels = torch.randint(0, groups, (b, h, w), generator=g).to(device)
    valid = (torch.rand(b, h, w, generator=g) > 0.05).to(device)
    counts = torch.zeros(groups, 1 << 16, dtype=torch.int64, device=device)
    return counts, values, labels, valid


def build_ours(shape, device):
    counts, values, labels, valid = _inputs(shape, device)
    return lambda: float16_histogram_(counts, values, labels, valid)


def build_peer(shape, device):
    counts, values, labels, valid = _inputs(shape, device)
    return lambda: float16_histogram_reference_(counts, values, labels, valid)


def run(device: str, repeats: int) -> list[dict]:
    rows = []
    for case, shape in CASES.items():
        b, h, w, groups = shape
        rows.append(_peak.case_row("float16_histogram_", "op_float16_histogram", case, (shape, device),
                                   f"{b}x{h}x{w} float16, {groups} groups", "order keys+bincount", device, repeats,
                                   agree=torch.equal))
    return rows


if __name__ == "__main__":
    device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    _peak.print_rows(run(device, int(sys.argv[2]) if len(sys.argv) > 2 else 5))
