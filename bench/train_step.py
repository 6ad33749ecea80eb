"""Seconds per training step (forward, weighted cross-entropy, backward, SGD step) and per
inference forward of a built-in model, in NCHW and in channels-last memory format, on the same
batch, alternating the two formats round by round so that both see the same machine load.

    .venv/bin/python bench/train_step.py [--model efficientnet-lite0] [--batch 8] [--crop 320]
        [--rounds 6] [--threads 2] [--device cpu]

Prints the median of each (after one warm-up step per format) and the ratio NCHW / channels-last
(> 1: channels-last is faster). `noisyseg train` and `predict` run a model in channels-last format
when its ModelSpec says so (the efficientnet-lite models do).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from noisyseg.plugins import get_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    spec = get_model(args.model)
    params = spec.resolve({"pretrained": False} if any(p.name == "pretrained" for p in spec.params) else {})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.crop, args.crop, generator=g).to(dev)
    y = torch.randint(0, 11, (args.batch, args.crop, args.crop), generator=g).to(dev)

    nets = {}
    for name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        torch.manual_seed(0)
        net = spec.factory(num_classes=11, **params).to(dev).to(memory_format=fmt).train()
        nets[name] = (net, torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step(name: str) -> float:
        net, opt = nets[name]
        sync()
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x)["logits"].float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        return time.perf_counter() - t

    def infer(name: str) -> float:
        net = nets[name][0].eval()
        sync()
        t = time.perf_counter()
        with torch.inference_mode():
            net(x)
        sync()
        net.train()
        return time.perf_counter() - t

    times = {(kind, name): [] for kind in ("train", "infer") for name in nets}
    for r in range(args.rounds + 1):
        for name in nets:
            for kind, fn in (("train", train_step), ("infer", infer)):
                s = fn(name)
                if r:  # round 0 warms up
                    times[kind, name].append(s)
    print(f"{args.model}, batch {args.batch} x {args.crop}^2, {args.device}, {args.threads} threads, "
          f"median of {args.rounds} rounds")
    for kind in ("train", "infer"):
        a, b = (statistics.median(times[kind, n]) for n in nets)
        print(f"  {kind:5s}  nchw {a:.3f} s   channels_last {b:.3f} s   ratio {a / b:.2f}x")


if __name__ == "__main__":
    main()
