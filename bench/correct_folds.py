"""Correctors cross-validated on a split with exact masks: a learning corrector fits on the other
folds' holes and corrects the held-out fold; every row is pooled over the whole split.

This is how ``gat -p supervised=true`` can be measured where its fit and target share one regime
(the same out-of-fold probabilities on both sides), without touching the split it is meant for.

    .venv/bin/python bench/correct_folds.py --root out/pt4 --labels out/pt4/strong-cleaned-small-loss \\
        [--split strong] [--folds 3] [--rows crf,gat-plus,supervised-w1,supervised-w2]

ROOT/preds/{features,probs} must hold the split's (out-of-fold) predictions; --labels its holes.
Folds interleave the split's ids (image k goes to fold k mod F). Prints mIoU, precision and hole
accuracy per row, pooled over the split, and per-class IoU.

--target-preds DIR takes the held-out fold's probs and features from DIR instead (e.g. the full
model's predictions of the split, ``noisyseg predict RUN/full DATA --split strong --features
--flip --out DIR``), while the fit folds keep ROOT/preds: a learning corrector then fits on one
model's probabilities and corrects another's, as in the chain (fit on out-of-fold, correct weak
with the full model).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.correct import quality  # noqa: E402
from noisyseg.io import Dataset, LabelDir  # noqa: E402
from noisyseg.metrics import LabelQuality  # noqa: E402
from noisyseg.pipeline.correct import correct  # noqa: E402

PLUS = {"min_clean": 0.5, "prior": True, "fuse": True, "crf": True, "n_segments": 3000}
ROWS = {
    "crf": ("crf", {}),
    "gat-plus": ("gat", {**PLUS, "gnn_weight": 0.5}),
    "supervised-w1": ("gat", {**PLUS, "supervised": True, "gnn_weight": 1.0}),
    "supervised-w2": ("gat", {**PLUS, "supervised": True, "gnn_weight": 2.0}),
    "supervised-median-w2": ("gat", {**PLUS, "supervised": True, "gnn_weight": 2.0, "fit_balance": "median"}),
}


def fold_view(data: Path, split: str, folds: int, where: Path) -> Path:
    """A dataset dir that is ``data`` (symlinked) with splits ``fitK``/``evalK`` of ``split``."""
    view = where / "data"
    (view / "splits").mkdir(parents=True)
    for name in ("images", "masks", "dataset.json"):
        (view / name).symlink_to(data.resolve() / name)
    ids = Dataset(data).ids(split)
    for k in range(folds):
        held = ids[k::folds]
        (view / "splits" / f"eval{k}.txt").write_text("\n".join(held) + "\n")
        (view / "splits" / f"fit{k}.txt").write_text("\n".join(i for i in ids if i not in set(held)) + "\n")
    return view


def mixed_preds(fit: Path, target: Path, ids: list[str], held: set[str], where: Path) -> Path:
    """A preds dir (probs/, features/ of symlinks) with ``held`` images from ``target``, the rest from ``fit``."""
    for kind in ("probs", "features"):
        (where / kind).mkdir(parents=True)
        for i in ids:
            os.symlink((target if i in held else fit).resolve() / kind / f"{i}.npy", where / kind / f"{i}.npy")
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "camvid"))
    ap.add_argument("--root", default=str(ROOT / "out" / "pretrained"), help="the chain's output dir")
    ap.add_argument("--labels", required=True, help="the split's cleaned labels (holes = 255)")
    ap.add_argument("--split", default="strong")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--target-preds", default=None, help="the held-out fold's probs/features from this dir")
    ap.add_argument("--rows", default="crf,gat-plus,supervised-w1,supervised-w2", help=f"comma list of {', '.join(ROWS)}")
    args = ap.parse_args()
    data, root = Path(args.data), Path(args.root)
    if not (data / "dataset.json").is_file():
        sys.exit(f"bench/correct_folds.py: {data} not found")
    from rich.console import Console

    from noisyseg.cli.ui import table

    console = Console(width=None if sys.stdout.isatty() else 160)
    rows, per_class = [], []
    with tempfile.TemporaryDirectory() as tmp:
        view = fold_view(data, args.split, args.folds, Path(tmp))
        ds, ids = Dataset(view), Dataset(data).ids(args.split)
        for name in args.rows.split(","):
            strategy, params = ROWS[name]
            where = {}  # image id -> the label dir of the fold that corrected it
            for k in range(args.folds):
                out = Path(tmp) / name / f"fold{k}"
                fit = {"fit_split": f"fit{k}"} if params.get("supervised") else {}
                preds = root / "preds"
                if args.target_preds:
                    preds = mixed_preds(preds, Path(args.target_preds), ids, set(ds.ids(f"eval{k}")),
                                        Path(tmp) / name / f"preds{k}")
                correct(view, f"eval{k}", args.labels, strategy, out, features=preds / "features",
                        probs=preds / "probs", params=params, **fit)
                where.update({i: LabelDir(out) for i in ds.ids(f"eval{k}")})
            q, hole_acc = quality(ds, ids, lambda i, size: where[i].read(i, ds.num_classes, size), LabelDir(args.labels))
            rows.append([name, q["miou"], q["precision"], hole_acc])
            per_class.append([name, *q["per_class_iou"].values()])
            console.print(f"{name}: done", style="dim")
    title = f"correct {args.split}, {args.folds} folds, pooled" + (f", held-out preds {args.target_preds}" if args.target_preds else "")
    console.print(table(f"{title}: IoU per class", ["labels", *(c[:6] for c in ds.classes)],
                        [[r[0], *("-" if v is None else f"{v:.2f}" for v in r[1:])] for r in per_class]))
    console.print(table(title, ["labels", "mIoU", "precision", "hole accuracy"], rows))


if __name__ == "__main__":
    main()
