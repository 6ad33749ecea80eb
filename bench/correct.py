"""Label correction on CamVid after the detection chain: every correction strategy, one table.

Rows: the noisy labels, the clean model's argmax and the cleaned (detect) labels for reference,
then each strategy's corrected labels: mIoU, precision (pixel accuracy over labelled pixels) and
coverage against the ground truth, accuracy on the holes of the input (the pixels a corrector
fills; for the reference rows, how often they are right there), and seconds per image (strategy
work: SLIC, graph, train, predict, CRF; not I/O).

    .venv/bin/python bench/correct.py [--limit 40] [--strategies gat,gcn,nearest,crf,...]
        [--root out/camvid] [--threads 2] [--oracle] [--per-class] [--fit-split strong [--fit-labels DIR]]

The inputs are the chain's directories (bench/camvid_chain.sh): ROOT/noisy, ROOT/cleaned,
ROOT/preds/features, ROOT/preds/probs. --limit images spread evenly over the split are used
(--limit 0: all).

--oracle replaces every trusted label of the input by the ground truth of its pixel (holes stay
holes): the rows then measure each corrector alone, as if detection were perfect at the same
coverage. --per-class adds a table of per-class IoU for every row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from noisyseg.io import Dataset, LabelDir, ProbsDir  # noqa: E402
from noisyseg.metrics import LabelQuality  # noqa: E402
from noisyseg.pipeline.correct import correct  # noqa: E402

DEFAULT = ["nearest", "crf", "gat", "gat+crf", "gcn", "prototype", "mllc"]


def quality(ds: Dataset, ids: list[str], read, holes: LabelDir) -> tuple[dict, float]:
    """Label quality of ``read(image_id, size) -> (H, W) labels`` against the ground truth, and
    their accuracy on the input's holes (the pixels a corrector has to fill)."""
    q = LabelQuality(ds.num_classes, ds.classes)
    right = total = 0
    for image_id in ids:
        size = ds.image_size(image_id)
        gt, labels = ds.load_mask(image_id, size), read(image_id, size)
        q.update(gt, labels)
        hole = (holes.read(image_id, ds.num_classes, size) == 255) & (gt != 255)
        right += int((labels[hole] == gt[hole]).sum())
        total += int(hole.sum())
    return q.summary(), right / total if total else float("nan")


def from_dir(ds: Dataset, path: Path):
    d = LabelDir(path)
    return lambda image_id, size: d.read(image_id, ds.num_classes, size)


def argmax_of(ds: Dataset, probs: Path):
    d = ProbsDir(probs)
    return lambda image_id, size: d.read(image_id, ds.num_classes, size).argmax(0)


def oracle_labels(ds: Dataset, ids: list[str], labels: Path, out: Path) -> Path:
    """Writes ``labels`` with each trusted (non-255) pixel set to its ground-truth class into ``out``."""
    src, dst = LabelDir(labels), LabelDir(out)
    for image_id in ids:
        size = ds.image_size(image_id)
        trusted = src.read(image_id, ds.num_classes, size)
        dst.write(image_id, np.where(trusted == 255, 255, ds.load_mask(image_id, size)).astype(np.uint8))
    return out


def learning(name: str, params: dict | None, args) -> dict:
    """``fit_split``/``fit_labels`` for a row whose strategy learns with its parameters, else nothing."""
    from noisyseg.plugins import get_strategy

    if not getattr(get_strategy("correction", name).build(params or {}), "learns", False):
        return {}
    if args.fit_split is None:
        sys.exit(f"bench/correct.py: {name} with these parameters learns from a split: pass --fit-split")
    return {"fit_split": args.fit_split, "fit_labels": args.fit_labels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "camvid"))
    ap.add_argument("--root", default=str(ROOT / "out" / "camvid"), help="the chain's output dir")
    ap.add_argument("--noisy", default=None)
    ap.add_argument("--labels", default=None, help="cleaned labels (default ROOT/cleaned)")
    ap.add_argument("--features", default=None)
    ap.add_argument("--probs", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=40, help="images, spread evenly over the split (0 = all)")
    ap.add_argument("--strategies", default=",".join(DEFAULT),
                    help="comma list; NAME+crf adds --crf; NAME@TAG is a second row of NAME with its own -p NAME@TAG:k=v")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--oracle", action="store_true", help="trusted labels replaced by the ground truth (corrector alone)")
    ap.add_argument("--per-class", action="store_true", help="also print per-class IoU")
    ap.add_argument("--fit-split", default=None, help="split with exact masks for strategies that learn "
                    "(gat -p supervised=true); its features/probs must be in the same dirs")
    ap.add_argument("--fit-labels", default=None, help="the fit split's holes (default: --labels)")
    ap.add_argument("-p", "--param", action="append", default=[],
                    help="NAME:key=value for one strategy (NAME@TAG:key=value for that row alone)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.root)
    noisy = Path(args.noisy or root / "noisy")
    cleaned = Path(args.labels or root / "cleaned")
    features = Path(args.features or root / "preds" / "features")
    probs = Path(args.probs or root / "preds" / "probs")
    for p in (noisy, cleaned, features, probs):
        if not p.is_dir():
            sys.exit(f"bench/correct.py: {p} not found; run bench/camvid_chain.sh first")
    ds = Dataset(args.data)
    all_ids = ds.ids(args.split)
    # Spread over the split (its sequences differ in lighting and scenery), not its first images.
    ids = all_ids[:: max(1, len(all_ids) // args.limit)][: args.limit] if args.limit else all_ids
    params: dict[str, dict] = {}
    for item in args.param:
        name, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        params.setdefault(name, {})[key] = value

    from rich.console import Console
    from noisyseg.cli.ui import table

    console = Console(width=None if sys.stdout.isatty() else 160)
    rows, per_class = [], []
    with tempfile.TemporaryDirectory() as tmp:
        if args.oracle:
            cleaned = oracle_labels(ds, ids, cleaned, Path(tmp) / "oracle")
        holes = LabelDir(cleaned)

        def add_row(name: str, read, seconds: float = float("nan"), fills_holes: bool = True) -> None:
            q, hole_acc = quality(ds, ids, read, holes)
            rows.append([name, q["miou"], q["precision"], q["coverage"], hole_acc if fills_holes else float("nan"), seconds])
            per_class.append([name, *q["per_class_iou"].values()])

        add_row("noisy labels", from_dir(ds, noisy))
        add_row("clean model's argmax", argmax_of(ds, probs))
        add_row("cleaned labels (input)" + (", oracle" if args.oracle else ""), from_dir(ds, cleaned), fills_holes=False)
        for entry in args.strategies.split(","):
            name, _, extra = entry.partition("@")[0].partition("+")
            out = Path(tmp) / entry.replace("+", "_").replace("@", "_")
            report = correct(args.data, args.split, cleaned, name, out, features=features, probs=probs,
                             params=params.get(entry, params.get(name)), crf=extra == "crf",
                             device=args.device, batch_size=args.batch_size, ids=ids,
                             **learning(name, params.get(entry, params.get(name)), args))
            add_row(entry, from_dir(ds, out), report["seconds_per_image"])
            t = report["timings"]
            console.print(f"{entry}: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()), style="dim")
    title = f"correct {args.split}, {len(ids)} images{', oracle seeds' if args.oracle else ''}"
    if args.per_class:
        console.print(table(f"{title}: IoU per class", ["labels", *(c[:6] for c in ds.classes)],
                            [[r[0].split(" (")[0], *("-" if v is None else f"{v:.2f}" for v in r[1:])] for r in per_class]))
    console.print(table(f"{title}, torch threads {torch.get_num_threads()}",
                        ["labels", "mIoU", "precision", "coverage", "hole accuracy", "s/image"], rows))


if __name__ == "__main__":
    main()
