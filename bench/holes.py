"""Where two corrections of the same holes differ: accuracy on the holes by distance to the true
class boundary and by true class, and the IoU each would give if only one bucket's pixels were
taken from the other.

    .venv/bin/python bench/holes.py --holes out/pt4/cleaned-small-loss --split weak \
        out/pt4/corrected-crf out/pt4/corrected-gat-plus

Holes are the input's 255 pixels that have ground truth. Distance is the Euclidean distance (px)
to the nearest pixel of another true class.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from noisyseg.constants import IGNORE_INDEX  # noqa: E402
from noisyseg.io import Dataset, LabelDir  # noqa: E402
from noisyseg.metrics.segmentation import ConfusionMatrix  # noqa: E402

BUCKETS = ((0, 2), (2, 5), (5, 10), (10, 20), (20, 10**6))


def boundary_distance(gt: np.ndarray) -> np.ndarray:
    """``(H, W)`` float distance of each pixel to the nearest pixel of a different true class."""
    from scipy.ndimage import distance_transform_edt

    edge = np.zeros(gt.shape, bool)
    edge[:, 1:] |= gt[:, 1:] != gt[:, :-1]
    edge[:, :-1] |= gt[:, 1:] != gt[:, :-1]
    edge[1:] |= gt[1:] != gt[:-1]
    edge[:-1] |= gt[1:] != gt[:-1]
    return distance_transform_edt(~edge)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="label dir of the first correction")
    ap.add_argument("b", help="label dir of the second correction")
    ap.add_argument("--holes", required=True, help="the label dir the corrections filled (255 = hole)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "camvid"))
    ap.add_argument("--split", default="weak")
    args = ap.parse_args()

    ds = Dataset(args.data)
    C = ds.num_classes
    holes, a_dir, b_dir = LabelDir(args.holes), LabelDir(args.a), LabelDir(args.b)
    names = (Path(args.a).name, Path(args.b).name)
    nb = len(BUCKETS)
    right = np.zeros((2, nb + C))      # per correction: right answers per distance bucket, then per class
    count = np.zeros(nb + C)
    conf = [ConfusionMatrix(C) for _ in range(2)]                         # whole images, each correction
    conf_swap = [[ConfusionMatrix(C) for _ in range(nb)] for _ in range(2)]  # a with one bucket's holes from b; b from a
    for image_id in ds.ids(args.split):
        size = ds.image_size(image_id)
        gt = ds.load_mask(image_id, size).astype(np.int64)
        hole = (holes.read(image_id, C, size) == IGNORE_INDEX) & (gt != IGNORE_INDEX)
        la = a_dir.read(image_id, C, size).astype(np.int64)
        lb = b_dir.read(image_id, C, size).astype(np.int64)
        dist = boundary_distance(gt)
        for k, lab in enumerate((la, lb)):
            conf[k].update(gt, lab)
        for j, (lo, hi) in enumerate(BUCKETS):
            m = hole & (dist >= lo) & (dist < hi)
            count[j] += m.sum()
            right[0, j] += (la[m] == gt[m]).sum()
            right[1, j] += (lb[m] == gt[m]).sum()
            for k, (mine, other) in enumerate(((la, lb), (lb, la))):
                conf_swap[k][j].update(gt, np.where(m, other, mine))
        for c in range(C):
            m = hole & (gt == c)
            count[nb + c] += m.sum()
            right[0, nb + c] += (la[m] == gt[m]).sum()
            right[1, nb + c] += (lb[m] == gt[m]).sum()

    base = (conf[0].miou(), conf[1].miou())
    print(f"## {args.split}: holes of {args.holes}; mIoU {names[0]} {base[0]:.4f}, {names[1]} {base[1]:.4f}\n")
    print(f"| bucket | hole pixels | share | {names[0]} accuracy | {names[1]} accuracy | "
          f"{names[0]} mIoU with {names[1]}'s labels there | {names[1]} mIoU with {names[0]}'s labels there |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    total = count[:nb].sum()
    for j, (lo, hi) in enumerate(BUCKETS):
        label = f"{lo}-{hi} px from a boundary" if hi < 10**6 else f">= {lo} px"
        n = max(count[j], 1)
        print(f"| {label} | {int(count[j])} | {count[j] / total:.3f} | {right[0, j] / n:.3f} | "
              f"{right[1, j] / n:.3f} | {conf_swap[0][j].miou():.4f} | {conf_swap[1][j].miou():.4f} |")
    for c in range(C):
        n = max(count[nb + c], 1)
        print(f"| class {ds.classes[c]} | {int(count[nb + c])} | {count[nb + c] / total:.3f} | "
              f"{right[0, nb + c] / n:.3f} | {right[1, nb + c] / n:.3f} | | |")


if __name__ == "__main__":
    main()
