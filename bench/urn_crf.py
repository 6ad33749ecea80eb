"""URN's CRFs: a process pool against a plain loop, same inputs, same result.

URN runs 1 + S·K dense CRFs per image in the paper's description (here S·K: the unscaled CRF is not
needed for U). They are independent, so ``workers > 1`` spreads them over processes. Prints
images/s of the loop and of the pool, their ratio, and checks that the uncertainty maps are equal.

    .venv/bin/python bench/urn_crf.py --limit 2 --workers 2 [--probs out/camvid/preds/probs]

Without --probs (or without its files) the probabilities are synthetic (a softmax of smoothed
noise over 11 classes) on the real CamVid images, so the CRF cost is realistic.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from noisyseg.io import Dataset, ProbsDir  # noqa: E402
from noisyseg.strategies.weighting.urn import present_classes, urn_uncertainty_batch  # noqa: E402


def synthetic_probs(C: int, H: int, W: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(1, C, H // 24, W // 24, generator=g) * 4
    logits = torch.nn.functional.interpolate(low, size=(H, W), mode="bilinear", align_corners=False)[0]
    return torch.softmax(logits, 0).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "camvid"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--probs", default=None)
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--iterations", type=int, default=5)
    args = ap.parse_args()

    ds = Dataset(args.data)
    ids = ds.ids(args.split)[: args.limit]
    probs_dir = ProbsDir(args.probs) if args.probs else None
    probs, images = [], []
    for k, image_id in enumerate(ids):
        size = ds.image_size(image_id)
        if probs_dir is not None and probs_dir.exists(image_id):
            probs.append(probs_dir.read(image_id, ds.num_classes, size).astype(np.float32))
        else:
            probs.append(synthetic_probs(ds.num_classes, *size, seed=k))
        images.append(ds.load_image(image_id))
    P, I = torch.from_numpy(np.stack(probs)), torch.from_numpy(np.stack(images))
    K = [len(present_classes(p)) for p in P]
    print(f"images {len(ids)} of {args.split}, size {tuple(P.shape[2:])}, C={P.shape[1]}, present classes {K}, "
          f"S=6 -> {6 * sum(K)} CRFs x {args.iterations} iterations; cpu_count={os.cpu_count()}")

    t = time.perf_counter()
    loop = urn_uncertainty_batch(P, I, iterations=args.iterations, workers=1)
    t_loop = time.perf_counter() - t
    t = time.perf_counter()
    pooled = urn_uncertainty_batch(P, I, iterations=args.iterations, workers=args.workers)
    t_pool = time.perf_counter() - t
    same = torch.equal(loop, pooled)
    n = len(ids)
    print(f"plain loop          : {n / t_loop:.4f} images/s ({t_loop:.1f} s)")
    print(f"process pool ({args.workers:>2d})   : {n / t_pool:.4f} images/s ({t_pool:.1f} s, pool start included)")
    print(f"ratio pool / loop   : {t_loop / t_pool:.2f}x   identical maps: {same}")


if __name__ == "__main__":
    main()
