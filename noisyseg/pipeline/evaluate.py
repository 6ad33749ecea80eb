"""``noisyseg evaluate``: quality of a label dir (or of probs) against ground truth."""

from __future__ import annotations

from pathlib import Path

from noisyseg.errors import InputError, NoisySegError
from noisyseg.io import Dataset, LabelDir, ProbsDir
from noisyseg.metrics import CalibrationError, LabelQuality
from noisyseg.pipeline.common import Track, no_track


def evaluate(dataset: str | Path, labels: str | Path | None = None, split: str | None = None,
             probs: str | Path | None = None, track: Track = no_track) -> dict:
    """Label quality of ``labels`` and/or argmax quality and ECE of ``probs`` against GT masks.

    Without ``split``, every image of the label (or probs) dir that the dataset has is evaluated.
    Returns ``{"images", "labels": {miou, pixel_accuracy, coverage, precision, per_class_iou},
    "probs": {..., "ece"}}`` with the parts that were asked for; ``labels`` figures are also at
    the top level.
    """
    if labels is None and probs is None:
        raise NoisySegError("evaluate: expected --labels and/or --probs, found neither")
    ds = Dataset(dataset)
    label_dir = LabelDir(labels).require() if labels else None
    probs_dir = ProbsDir(probs).require() if probs else None
    if split is not None:
        ids = ds.ids(split)
    else:
        source = label_dir or probs_dir
        ids = sorted(p.stem for p in source.root.glob(f"*{source.suffix}") if not p.name.startswith("."))
        ids = [i for i in ids if ds.has_mask(i)]
    if not ids:
        raise InputError(labels or probs, "images of the dataset with ground-truth masks", "none")
    lq = LabelQuality(ds.num_classes, ds.classes) if label_dir else None
    pq = LabelQuality(ds.num_classes, ds.classes) if probs_dir else None
    ece = CalibrationError() if probs_dir else None
    for image_id in track(ids, len(ids), "evaluate"):
        size = ds.image_size(image_id)
        gt = ds.load_mask(image_id, size)
        if lq:
            lq.update(gt, label_dir.read(image_id, ds.num_classes, size))
        if pq:
            p = probs_dir.read(image_id, ds.num_classes, size)
            pq.update(gt, p.argmax(0).astype("uint8"))
            ece.update(p, gt)
    report: dict = {"command": "evaluate", "dataset": str(Path(dataset).resolve()), "split": split, "images": len(ids)}
    if lq:
        report["labels"] = lq.summary()
        report.update({k: report["labels"][k] for k in ("miou", "pixel_accuracy", "coverage", "precision", "per_class_iou")})
    if pq:
        report["probs"] = pq.summary() | {"ece": ece.ece()}
    return report
