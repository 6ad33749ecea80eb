"""``noisyseg detect``: flag untrusted pixels of a noisy label dir; flagged pixels become 255.

The run follows ``noisyseg.pipeline.runner``; ``iter_batches`` (the batches a detection strategy's
``fit`` and ``detect`` see, also read by ``report``) and the report's figures are detect's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, ParameterError
from noisyseg.io import Dataset, LabelDir, ProbsDir
from noisyseg.io.dirs import load_float_npy, save_npy
from noisyseg.metrics import DetectionQuality, LabelQuality
from noisyseg.pipeline.common import Track, group_by_size, no_track
from noisyseg.pipeline.runner import StrategyRun
from noisyseg.strategies.detection.base import Batch, DetectionContext


def iter_batches(ds: Dataset, ids: list[str], labels: LabelDir, probs: ProbsDir, device: torch.device,
                 batch_size: int, need_gt: bool = False, with_gt: bool = True) -> Iterator[Batch]:
    """Same-size batches of (probs, noisy labels, GT when present and ``with_gt``) on ``device``;
    ``need_gt`` makes a missing GT mask an error.

    On the CPU, the probs and labels of a batch live in buffers that the next batch of the same size
    overwrites: files are read straight into them, and no fresh memory is touched per batch (page
    faults on ~30 MB a batch cost more than reading the files). Copy what must outlive an iteration.
    """
    sizes = {i: ds.image_size(i) for i in ids}
    buffers: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for chunk in group_by_size(ids, sizes, batch_size):
        size = sizes[chunk[0]]
        key = (len(chunk), *size)
        if key not in buffers:
            buffers = {key: (np.empty((len(chunk), ds.num_classes, *size), np.float16),  # the probs contract's dtype
                             np.empty((len(chunk), *size), np.int64))}
        p, lab = buffers[key]
        for k, image_id in enumerate(chunk):
            probs.read(image_id, ds.num_classes, size, out=p[k])
            lab[k] = labels.read(image_id, ds.num_classes, size)
        gt = None
        if need_gt or (with_gt and all(ds.has_mask(i) for i in chunk)):
            if need_gt and not all(ds.has_mask(i) for i in chunk):
                missing = next(i for i in chunk if not ds.has_mask(i))
                raise InputError(ds.mask_path(missing), "a ground-truth mask for calibration", "no such file")
            gt = torch.from_numpy(np.stack([ds.load_mask(i, size) for i in chunk]).astype(np.int64)).to(device)
        yield Batch(chunk, torch.from_numpy(p).to(device), torch.from_numpy(lab).to(device), gt)


def read_scores(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A ``scores/<id>.npy`` written by an earlier run: float ``(H, W)`` noise scores."""
    arr = load_float_npy(path, f"noise scores of shape ({size[0]}, {size[1]})", 2)
    if arr.shape != tuple(size):
        raise InputError(path, f"noise scores of shape ({size[0]}, {size[1]})", f"shape {arr.shape}")
    return arr


def class_agreement(batches: Iterator[Batch], num_classes: int) -> torch.Tensor:
    """``(C,)`` float64: for each class, the share of its noisy pixels where the model's argmax is
    that class (NaN for a class no pixel carries)."""
    from noisyseg.ops.label_confidence import label_confidence

    agree = labelled = None
    for batch in batches:
        best = label_confidence(batch.probs, batch.labels).best
        valid = (batch.labels >= 0) & (batch.labels < num_classes)
        lab = batch.labels[valid]
        a = torch.bincount(lab[best[valid] == lab], minlength=num_classes).double()
        n = torch.bincount(lab, minlength=num_classes).double()
        agree, labelled = (a, n) if agree is None else (agree + a, labelled + n)
    if agree is None:
        return torch.full((num_classes,), float("nan"), dtype=torch.float64)
    return (agree / labelled).cpu()


def detect(dataset: str | Path, split: str, labels: str | Path, probs: str | Path, strategy: str, out: str | Path,
           params: dict | None = None, scores: bool = False, device: str = "auto", batch_size: int = 8,
           force: bool = False, track: Track = no_track, spare_blind: float = 0.0) -> dict:
    """Runs detection strategy ``strategy`` over ``split``; returns the report (also out/report.json).

    ``spare_blind`` > 0: a class whose noisy pixels the model's argmax agrees with on fewer than
    this share over the split is one the model cannot judge (it barely predicts it); its pixels are
    never flagged (a pass over the split first; the report lists the classes and agreements).
    """
    run = StrategyRun("detect", "detection", dataset, split, strategy, params, out, batch_size, force, track)
    ds, detector = run.ds, run.strategy
    ids = ds.ids(split)
    label_dir, probs_dir = LabelDir(labels).require(), ProbsDir(probs).require()
    run_params = {"dataset": str(Path(dataset).resolve()), "labels": str(Path(labels).resolve()),
                  "probs": str(Path(probs).resolve()), "strategy": strategy, "params": run.params, "scores": scores}
    if spare_blind:
        if not 0 < spare_blind <= 1:
            raise ParameterError(f"--spare-blind: expected a share in (0, 1], found {spare_blind:g}")
        run_params["spare_blind"] = spare_blind
    with run.start(ids, run_params, device) as output:
        dev, timer = run.device, run.timer
        cleaned, score_dir = LabelDir(out), Path(out) / "scores"

        ctx = DetectionContext(
            num_classes=ds.num_classes,
            batches=lambda: iter_batches(ds, ids, label_dir, probs_dir, dev, batch_size, with_gt=False),
            calibration_batches=lambda s: iter_batches(ds, ds.ids(s), label_dir, probs_dir, dev, batch_size, need_gt=True),
        )
        with timer("fit"):
            with run.strategy_errors():
                fitted = detector.fit(ctx)
            spared = None
            if spare_blind:
                agreement = class_agreement(ctx.batches(), ds.num_classes)
                spared = (agreement < spare_blind).to(dev)  # NaN (class absent) compares False
                fitted = {**fitted, "spare_blind": {
                    "class_agreement": {n: (None if v != v else v) for n, v in zip(ds.classes, agreement.tolist())},
                    "spared_classes": [n for n, b in zip(ds.classes, spared.tolist()) if b]}}

        has_gt = all(ds.has_mask(i) for i in ids)
        quality = DetectionQuality() if has_gt else None
        before = LabelQuality(ds.num_classes, ds.classes) if has_gt else None
        after = LabelQuality(ds.num_classes, ds.classes) if has_gt else None
        flagged_total = valid_total = 0

        def files(image_id: str) -> list[Path]:
            return [cleaned.path(image_id), *([score_dir / f"{image_id}.npy"] if scores else [])]

        def account(gt, noisy, clean, scores) -> None:
            """Counts one image or a batch ``(B, H, W)`` (tensors or arrays) into the report's figures."""
            nonlocal flagged_total, valid_total
            noisy, clean = (a if torch.is_tensor(a) else torch.from_numpy(a) for a in (noisy, clean))
            valid = noisy != IGNORE_INDEX
            flagged = (clean == IGNORE_INDEX) & valid
            flagged_total += int(flagged.sum())
            valid_total += int(valid.sum())
            if has_gt:
                quality.update(gt, noisy, flagged, scores)
                before.update(gt, noisy)
                after.update(gt, clean)

        # "detect" times reading inputs, detecting and writing outputs; "evaluate" the figures against GT.
        todo = run.todo(files)
        batches = timer.iterate(iter_batches(ds, todo, label_dir, probs_dir, dev, batch_size, with_gt=False), "detect")
        for batch in run.tracked(batches):
            with timer("evaluate"):  # ground truth first: a bad mask stops the run before the batch is written
                gt = None
                if has_gt:
                    size = tuple(batch.labels.shape[-2:])
                    gt = torch.from_numpy(np.stack([ds.load_mask(i, size) for i in batch.ids]).astype(np.int64)).to(dev)
            with timer("detect"):
                with run.strategy_errors():
                    result = detector.detect(batch.probs, batch.labels)
                flags = result.flags & (batch.labels != IGNORE_INDEX)
                if spared is not None:
                    flags &= ~spared[batch.labels.clamp(max=ds.num_classes - 1)]
                clean = torch.where(flags, torch.full_like(batch.labels, IGNORE_INDEX), batch.labels)
                clean_np = clean.to(torch.uint8).cpu().numpy()
                score = result.scores.half().cpu().numpy() if scores else None
                for k, image_id in enumerate(batch.ids):
                    files = [cleaned.write(image_id, clean_np[k], ds.palette)]
                    if scores:
                        files.append(save_npy(score_dir / f"{image_id}.npy", score[k]))
                    output.record(*files)
            with timer("evaluate"):
                account(gt, batch.labels, clean, result.scores)
        # Images finished by an earlier run still count in the report.
        with timer("evaluate"):
            for image_id in run.finished():
                size = run.sizes[image_id]
                account(ds.load_mask(image_id, size) if has_gt else None, label_dir.read(image_id, ds.num_classes, size),
                        cleaned.read(image_id, ds.num_classes, size),
                        read_scores(score_dir / f"{image_id}.npy", size) if scores else None)

        figures = {"flagged_share": flagged_total / valid_total if valid_total else 0.0, "timings": timer.seconds}
        if has_gt:
            figures["detection_quality"] = quality.summary()
            figures["noisy_label_quality"] = before.summary()
            figures["cleaned_label_quality"] = after.summary()
        return run.report(figures, head={"fitted": fitted})
