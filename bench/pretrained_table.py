"""The figures of bench/camvid_pretrained.sh, one table per stage, from its output directory.

    .venv/bin/python bench/pretrained_table.py OUT [LAB] [UNL] [DATA]

Rows (against UNL's ground truth unless said): the clean model's argmax; the noisy labels; each
detection's cleaned labels (precision, coverage) and detection quality; each corrector's labels
(and accuracy on the holes); the final models' test mIoU per seed and their mean. Missing stages
are left out, so the table can be printed while the chain is still running.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from noisyseg.io import Dataset, LabelDir  # noqa: E402
from noisyseg.pipeline.evaluate import evaluate  # noqa: E402


def hole_accuracy(ds: Dataset, ids: list[str], holes: Path, labels: Path) -> float:
    """Share of the ground-truth-labelled holes of ``holes`` that ``labels`` gets right."""
    right = total = 0
    h, lab = LabelDir(holes), LabelDir(labels)
    for image_id in ids:
        size = ds.image_size(image_id)
        gt = ds.load_mask(image_id, size)
        hole = (h.read(image_id, ds.num_classes, size) == 255) & (gt != 255)
        right += int((lab.read(image_id, ds.num_classes, size)[hole] == gt[hole]).sum())
        total += int(hole.sum())
    return right / total if total else float("nan")


def row(name: str, q: dict, extra: str = "") -> str:
    return f"| {name} | {q['miou']:.4f} | {q['precision']:.4f} | {q['coverage']:.4f} | {extra} |"


def main() -> None:
    out = Path(sys.argv[1])
    lab = sys.argv[2] if len(sys.argv) > 2 else "strong"
    unl = sys.argv[3] if len(sys.argv) > 3 else "weak"
    data = Path(sys.argv[4] if len(sys.argv) > 4 else ROOT.parent / "shared" / "datasets" / "camvid")
    ds = Dataset(data)
    ids = ds.ids(unl)
    noisy = out / "noisy"
    print(f"## {out}: {lab} -> {unl}\n")
    print("| labels | mIoU | precision | coverage | notes |\n| --- | --- | --- | --- | --- |")
    if (out / "preds" / "probs").is_dir():
        q = evaluate(data, split=unl, probs=out / "preds" / "probs")["probs"]
        print(row("clean model (argmax)", q, f"pixel acc {q['pixel_accuracy']:.4f}, ECE {q['ece']:.4f}"))
    if noisy.is_dir():
        print(row("noisy labels", evaluate(data, split=unl, labels=noisy)))
    for strategy in ("small-loss", "confident"):
        d = out / f"cleaned-{strategy}"
        if (d / "report.json").is_file():
            rep = json.loads((d / "report.json").read_text())
            dq = rep.get("detection_quality") or {}
            notes = ", ".join(f"{k} {dq[k]:.3f}" for k in ("precision", "recall", "f1", "auroc") if k in dq)
            print(row(f"cleaned: {strategy}", evaluate(data, split=unl, labels=d), f"detection {notes}"))
    for strategy in ("gat", "gat-plus", "gat-supervised", "nearest", "crf"):
        d = out / f"corrected-{strategy}"
        if (d / "report.json").is_file():
            source = Path(json.loads((d / "report.json").read_text()).get("labels", ""))  # the holes it filled
            acc = hole_accuracy(ds, ids, source, d) if source.is_dir() else float("nan")
            print(row(f"corrected: {strategy}", evaluate(data, split=unl, labels=d), f"hole accuracy {acc:.3f}"))
    finals = {}
    for what in ("noisy", "cleaned", "corrected", "gt"):
        for p in sorted(out.glob(f"preds-final-{what}-*")):
            if (p / "report.json").is_file():
                finals.setdefault(what, []).append(evaluate(data, split="test", probs=p / "probs")["probs"]["miou"])
    if finals:
        print(f"\n| final model: {lab} masks + {unl} labels | test mIoU per seed | mean |\n| --- | --- | --- |")
        for what, scores in finals.items():
            print(f"| {what} | {', '.join(f'{s:.4f}' for s in scores)} | {statistics.mean(scores):.4f} |")


if __name__ == "__main__":
    main()
