"""Pseudo-label quality on CamVid: ECE and mIoU of argmax, entropy-filter and calibrated-fusion.

A clean model (``noisyseg train`` on val) predicts the first ``--limit`` images of ``--split``; from
its decoder logits and its classifier's CAMs (stage4, max-normalised, zero for classes not in
the image's tags) we make pseudo-labels with each strategy's tensor function and score them
against the ground truth:

- ECE: 15 equal-width bins of the pseudo-label distribution's top probability, over the pixels the
  pseudo-label labels (ground truth not 255); argmax and entropy-filter use the model's softmax.
- mIoU / precision / coverage: of the hard pseudo-labels, as ``noisyseg evaluate`` computes them.

Tags: ``--tags gt`` takes the classes of each ground-truth mask (the image-level-label setting
of PseudoSeg and U2PL's weak supervision); ``--tags classifier`` takes sigmoid(class_logits) > 0.5
(what ``noisyseg predict --cams`` does without a tags.json).

    .venv/bin/python bench/pseudo.py --run out/camvid/runs/clean --split train --limit 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from noisyseg.io import Dataset  # noqa: E402
from noisyseg.metrics import CalibrationError, LabelQuality  # noqa: E402
from noisyseg.models.sgc import class_activation_maps  # noqa: E402
from noisyseg.pipeline.common import group_by_size, select_device  # noqa: E402
from noisyseg.strategies.pseudo_labeling import (argmax_labels, calibrated_fusion, cams_to_logits,  # noqa: E402
                                                 entropy_filter)
from noisyseg.train.checkpoint import load_run  # noqa: E402
from noisyseg.train.data import normalise  # noqa: E402

IGNORE = 255


def strategies(args):
    """name -> fn(probs, logits, cams) -> (hard labels (B, H, W), soft (B, C, H, W))."""
    def fusion(cam_scale=None, **kw):
        scale = args.cam_scale if cam_scale is None else cam_scale

        def run(p, lg, cam):
            soft = calibrated_fusion(lg, cams_to_logits(cam) * scale, **kw)
            return soft.argmax(1), soft
        return run

    return {
        "argmax": lambda p, lg, cam: (argmax_labels(p), p),
        f"entropy-filter (alpha={args.alpha})": lambda p, lg, cam: (entropy_filter(p, args.alpha), p),
        "calibrated-fusion (decoder + CAM)": fusion(gamma=0.5, temperature=0.5, norm="image"),
        "  norm=batch (authors' code)": fusion(gamma=0.5, temperature=0.5, norm="batch"),
        "  norm=none (no calibration)": fusion(gamma=0.5, temperature=0.5, norm="none"),
        "  gamma=1 (decoder only, normed+sharpened)": fusion(gamma=1.0, temperature=0.5, norm="image"),
        "  CAM scores x10": fusion(cam_scale=10.0, gamma=0.5, temperature=0.5, norm="image"),
        "  T=1 (no sharpening)": fusion(gamma=0.5, temperature=1.0, norm="image"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "camvid"))
    ap.add_argument("--run", default=str(ROOT / "out" / "camvid" / "runs" / "clean"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.2)
    ap.add_argument("--cam-scale", type=float, default=1.0)
    ap.add_argument("--tags", choices=("gt", "classifier"), default="gt")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    ds = Dataset(args.data)
    if not (Path(args.run) / "model.pt").is_file():
        sys.exit(f"bench/pseudo.py: {args.run}/model.pt not found; train the clean model first (bench/camvid_chain.sh)")
    dev = select_device(args.device)
    model, _ = load_run(args.run, dev)
    ids = ds.ids(args.split)[: args.limit]
    C = ds.num_classes
    table = strategies(args)
    ece = {k: CalibrationError() for k in table}
    quality = {k: LabelQuality(C, ds.classes) for k in table}
    seconds = {k: 0.0 for k in table}
    sizes = {i: ds.image_size(i) for i in ids}
    t0 = time.perf_counter()
    with torch.inference_mode():
        for chunk in group_by_size(ids, sizes, args.batch_size):
            images = torch.stack([normalise(ds.load_image(i)) for i in chunk]).to(dev)
            gt = torch.from_numpy(np.stack([ds.load_mask(i) for i in chunk]).astype(np.int64))
            out = model(images)
            logits = out["logits"].float()
            probs = torch.softmax(logits, 1)
            if args.tags == "gt":
                present = torch.zeros(len(chunk), C, dtype=torch.bool)
                for k in range(len(chunk)):
                    classes = gt[k][gt[k] != IGNORE].unique()
                    present[k, classes] = True
                present = present.to(dev)
            else:
                present = torch.sigmoid(out["class_logits"].float()) > 0.5
            cams = class_activation_maps(out["stage4"], model.class_head.weight, present)
            cams = F.interpolate(cams, size=logits.shape[2:], mode="bilinear", align_corners=False)
            for name, fn in table.items():
                t = time.perf_counter()
                hard, soft = fn(probs, logits, cams)
                seconds[name] += time.perf_counter() - t
                hard_np, soft_c = hard.cpu().numpy().astype(np.uint8), soft.float().cpu()
                for k in range(len(chunk)):
                    g = gt[k].numpy()
                    quality[name].update(g, hard_np[k])
                    ece[name].update(soft_c[k], np.where(hard_np[k] != IGNORE, g, IGNORE))
    total = time.perf_counter() - t0
    H, W = sizes[ids[0]]
    print(f"camvid {args.split}: {len(ids)} images {H}x{W}, C={C}, run {args.run}, tags from {args.tags}, "
          f"device {dev}, {total:.1f} s")
    print(f"{'strategy':44s} {'ECE':>7s} {'mIoU':>7s} {'prec':>7s} {'cover':>7s} {'ms/img':>7s}")
    rows = []
    for name in table:
        q = quality[name].summary()
        rows.append((name, ece[name].ece(), q["miou"], q["precision"], q["coverage"]))
        print(f"{name:44s} {rows[-1][1]:7.4f} {q['miou']:7.4f} {q['precision']:7.4f} {q['coverage']:7.4f} "
              f"{1000 * seconds[name] / len(ids):7.2f}")
    main_rows = {r[0]: r[1] for r in rows[:3]}
    best = min(main_rows, key=main_rows.get)
    base = main_rows["argmax"]
    print(f"lowest ECE of the three: {best}; ECE ratio fusion / argmax = "
          f"{main_rows['calibrated-fusion (decoder + CAM)'] / base:.3f}")


if __name__ == "__main__":
    main()
