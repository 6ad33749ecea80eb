"""Bench label_confidence against the plain-torch pixel statistics it replaces.

Peer: torch.max over the class axis (values and argmax) and a gather of each pixel's own label,
the way confident learning's statistics are usually written. Ours: one
``noisyseg.ops.label_confidence`` call. Inputs are float16 probabilities, the dtype ``noisyseg
predict`` writes. Run alone: ``python bench/op_label_confidence.py [cpu|cuda] [repeats]``.
"""

from __future__ import annotations

import sys

import torch

import _peak

_peak.load_dev_libs()

from noisyseg.ops import label_confidence  # noqa: E402

CASES = {"camvid batch 8x11x360x480": (8, 11, 360, 480), "cityscapes 4x19x1024x2048": (4, 19, 1024, 2048)}


def _inputs(shape, device):
    g = torch.Generator().manual_seed(0)
    b, c, h, w = shape
    probs = torch.softmax(torch.randn(shape, generator=g) * 3, 1).half().to(device)
    labels = torch.randint(0, c, (b, h, w), generator=g)
    labels[:, :8] = 255
    return probs, labels.to(device)


def peer(probs, labels):
    p_best, best = probs.max(1)
    valid = labels != 255
    p_label = probs.gather(1, torch.where(valid, labels, 0)[:, None]).squeeze(1)
    return torch.where(valid, p_label, 0.0), best, p_best


def build_ours(shape, device):
    probs, labels = _inputs(shape, device)
    return lambda: label_confidence(probs, labels)


def build_peer(shape, device):
    probs, labels = _inputs(shape, device)
    return lambda: peer(probs, labels)


def run(device: str, repeats: int) -> list[dict]:
    return [_peak.case_row("label_confidence", "op_label_confidence", case, (shape, device),
                           "x".join(map(str, shape)) + " float16", "torch.max(dim=1)+gather", device, repeats,
                           agree=lambda ours, ref: all(torch.equal(a, b) for a, b in zip(ours, ref)))
            for case, shape in CASES.items()]


if __name__ == "__main__":
    device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    _peak.print_rows(run(device, int(sys.argv[2]) if len(sys.argv) > 2 else 5))
