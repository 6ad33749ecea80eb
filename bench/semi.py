"""Semi-supervised training against supervised training on the labelled split alone.

    .venv/bin/python bench/semi.py [--out out/semi] [--methods supervised,unimatch,fixmatch,u2pl,pseudoseg]
                                   [--seeds 0,1] [--epochs 20] [--data ../shared/datasets/camvid]
                                   [--extra OPTS] [--semi-extra OPTS] [--table-only]

For each method and seed: ``noisyseg train DATA --split LAB [--unlabelled UNL] --method M
--val-split VAL`` into OUT/runs/M-SEED (the supervised baseline is the same loop without the
unlabelled stream, so both pick their best epoch on VAL the same way), then ``noisyseg predict``
on TEST and the test mIoU of its argmax. Runs and predictions resume, so rerunning the command
finishes what was interrupted and only reads what is done; ``--table-only`` never trains.

Defaults: CamVid, 90 masks (strong) + 277 unlabelled images (weak), the pretrained
efficientnet-lite0 at half resolution (the recipe of bench/camvid_pretrained.sh). An epoch of a
semi-supervised run is a pass over the unlabelled split; the supervised baseline gets the same
number of optimiser steps (``--supervised-epochs`` overrides). ``--extra`` adds train options to
every run, ``--semi-extra`` to the semi-supervised runs only: on CamVid's street scenes
``--semi-extra "--warmup-epochs 8"`` (272 supervised-only steps first) is u2pl's recipe and
``"--warmup-epochs 8 --threshold 0"`` (then every pixel's pseudo-label counts) unimatch's, as
measured in bench/RESULTS.md. The table: method, test mIoU per
seed and their mean, seconds per optimiser step, peak memory (the training process's peak RSS on
the CPU, torch's peak allocation on a GPU), the best validation mIoU and which model it was.

Noisy labels for UNL (``--unlabelled-labels DIR``, e.g. detect's cleaned labels): the semi runs
learn them beside the teacher (``--methods supervised,mean-teacher``), and the supervised baseline
trains on LAB's masks + UNL's DIR labels (as ``--split LAB --split UNL --labels UNL=DIR``). With
the dataset's own masks (``--methods supervised --unlabelled-labels DATA/masks``) that is the
ceiling: what UNL's images would give if every one had an exact mask.

Smoke run on the procedural data (seconds):
    python -c "from noisyseg.synthetic import make_dataset; make_dataset('/tmp/shapes', splits={'strong': 8, 'weak': 8, 'val': 4, 'test': 4}, size=48)"
    python bench/semi.py --data /tmp/shapes --out /tmp/semi --methods supervised,fixmatch --seeds 0 --epochs 1 \\
        --recipe "--model deeplabv3plus -p width=8 -p depth=1,1,1,1 -p feature_dim=16 --crop-size 32 --batch-size 2"
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from noisyseg.io import Dataset  # noqa: E402
from noisyseg.pipeline.evaluate import evaluate  # noqa: E402

RECIPE = "--input-scale 0.5 --crop-size 160 --scale-range 0.5,1.5 --jitter 0.4 --lr 0.02 --backbone-lr 0.5"


def supervised_epochs(args, ds: Dataset) -> int:
    """Epochs that give the supervised baseline as many optimiser steps as a semi-supervised run."""
    if args.supervised_epochs:
        return args.supervised_epochs
    batch = int(_option(args.recipe + " " + args.extra, "--batch-size", "8"))
    semi_steps = max(1, len(ds.ids(args.unlabelled)) // batch) * args.epochs
    images = len(ds.ids(args.labelled)) + (len(ds.ids(args.unlabelled)) if args.unlabelled_labels else 0)
    return max(1, round(semi_steps / max(1, images // batch)))


def _option(text: str, name: str, default: str) -> str:
    words = shlex.split(text)
    return words[words.index(name) + 1] if name in words else default


def noisyseg(*words) -> None:
    command = [sys.executable, "-m", "noisyseg", *map(str, words)]
    print("+", " ".join(shlex.quote(w) for w in command[2:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def run(args, ds: Dataset, method: str, seed: int) -> Path:
    out = Path(args.out) / "runs" / f"{method}-{seed}"
    words = ["train", args.data, "--split", args.labelled, "--method", method, "--out", out, "--seed", seed,
             "--val-split", args.val, "--device", args.device]
    if method == "supervised":
        words += ["--epochs", supervised_epochs(args, ds)]
        if args.unlabelled_labels:  # the baseline learns the same labels, as a second split
            words += ["--split", args.unlabelled, "--labels", f"{args.unlabelled}={args.unlabelled_labels}"]
            if args.unlabelled_weights:
                words += ["--weights", f"{args.unlabelled}={args.unlabelled_weights}"]
    else:
        words += ["--unlabelled", args.unlabelled, "--epochs", args.epochs, *shlex.split(args.semi_extra)]
        if args.unlabelled_labels:
            words += ["--unlabelled-labels", args.unlabelled_labels]
            if args.unlabelled_weights:
                words += ["--unlabelled-weights", args.unlabelled_weights]
    noisyseg(*words, *shlex.split(args.recipe), *shlex.split(args.extra))
    return out


def test_miou(args, run_dir: Path, name: str) -> float:
    preds = Path(args.out) / "preds" / name
    if not args.table_only:
        noisyseg("predict", run_dir, args.data, "--split", args.test, "--out", preds, "--device", args.device)
    if not (preds / "report.json").is_file():
        return float("nan")
    return evaluate(args.data, split=args.test, probs=preds / "probs")["probs"]["miou"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "camvid"))
    p.add_argument("--out", default="out/semi")
    p.add_argument("--methods", default="supervised,unimatch,fixmatch,u2pl,pseudoseg")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the semi-supervised runs (passes over UNL)")
    p.add_argument("--supervised-epochs", type=int, default=None, help="default: as many steps as --epochs gives")
    p.add_argument("--labelled", default="strong")
    p.add_argument("--unlabelled", default="weak")
    p.add_argument("--val", default="val")
    p.add_argument("--test", default="test")
    p.add_argument("--device", default="auto")
    p.add_argument("--recipe", default=RECIPE, help="train options shared by every run")
    p.add_argument("--extra", default="", help="more train options of every run, e.g. '--accumulate 2'")
    p.add_argument("--semi-extra", default="",
                   help="train options of the semi-supervised runs only, e.g. the street-scene recipes "
                        "'--warmup-epochs 8' (u2pl) and '--warmup-epochs 8 --threshold 0' (unimatch)")
    p.add_argument("--unlabelled-labels", default=None,
                   help="label dir of UNL (noisy, cleaned, corrected): semi runs get --unlabelled-labels, the "
                        "supervised baseline trains on LAB + UNL with these labels")
    p.add_argument("--unlabelled-weights", default=None, help="weights dir going with --unlabelled-labels")
    p.add_argument("--table-only", action="store_true", help="print the table of finished runs, train nothing")
    args = p.parse_args()
    if not (Path(args.data) / "dataset.json").is_file():
        print(f"bench/semi.py: {args.data} is not a dataset, skipping")
        return
    ds = Dataset(args.data)
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for method in methods:
        scores, reports = [], []
        for seed in seeds:
            run_dir = Path(args.out) / "runs" / f"{method}-{seed}"
            if not args.table_only:
                run(args, ds, method, seed)
            if not (run_dir / "report.json").is_file():
                scores.append(float("nan"))
                continue
            reports.append(json.loads((run_dir / "report.json").read_text()))
            scores.append(test_miou(args, run_dir, f"{method}-{seed}"))
        done = [s for s in scores if s == s]
        best = [r["best"] for r in reports if r.get("best")]
        rows.append([method, ", ".join(f"{s:.4f}" for s in scores), f"{statistics.mean(done):.4f}" if done else "-",
                     f"{statistics.mean(r['seconds_per_step'] for r in reports):.2f}" if reports else "-",
                     f"{max(r['peak_memory_mb'] for r in reports):.0f}" if reports else "-",
                     str(reports[0]["steps_per_epoch"] * reports[0]["epochs"]) if reports else "-",
                     ", ".join(f"{b['miou']:.4f} ({b['which']})" for b in best) or "-"])
    device = reports[0]["device"] if rows and reports else args.device
    second = f"{args.unlabelled} with labels {args.unlabelled_labels}" if args.unlabelled_labels else \
        f"{args.unlabelled} (unlabelled)"
    print(f"\n## {args.data}: {args.labelled} (labelled) + {second}, test on {args.test}, {device}\n")
    print("| method | test mIoU per seed | mean | s/step | peak MB | steps | best val mIoU (model) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
