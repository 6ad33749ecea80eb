"""``noisyseg pseudo-label``: hard (and soft) pseudo-labels for a split from model outputs.

Inputs are per-image directories: probs (required), and as the strategy needs them (and whenever
given) CAMs (``<id>.npy`` float (C, h, w), from ``noisyseg predict --cams``; resized bilinearly to
the image), decoder logits (``<id>.npy`` float (C, H, W), from ``predict --logits``) and features.
Tags, for a strategy that needs or accepts them, come from the dataset's tags.json or, without one,
from the classes whose CAM is non-zero (predict zeroes the CAMs of classes it judges absent).
Without logits, calibrated-fusion uses log p, which has the same softmax but a different RMS norm.
The run follows ``noisyseg.pipeline.runner``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, ParameterError
from noisyseg.io import FeaturesDir, LabelDir, ProbsDir
from noisyseg.io.dirs import read_class_maps, save_npy
from noisyseg.metrics import CalibrationError, LabelQuality
from noisyseg.pipeline.common import Track, no_track
from noisyseg.pipeline.runner import Input, StrategyRun
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs


def _require_dir(path: str | Path, flag: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, f"a directory for {flag}", "no such directory")
    return path


def pseudo_label(dataset: str | Path, split: str, probs: str | Path, strategy: str, out: str | Path,
                 params: dict | None = None, cams: str | Path | None = None, logits: str | Path | None = None,
                 features: str | Path | None = None, soft: bool = False, device: str = "auto", batch_size: int = 8,
                 force: bool = False, track: Track = no_track) -> dict:
    """Runs pseudo-labeling strategy ``strategy`` over ``split``; writes ``out/<id>.png`` (255 =
    ignore) and, with ``soft``, ``out/<id>.npy`` float16 (C, H, W). Returns the report."""
    run = StrategyRun("pseudo-label", "pseudo-labeling", dataset, split, strategy, params, out, batch_size, force, track)
    ds, labeler = run.ds, run.strategy
    # Every map given is handed over; tags come from the dataset's tags.json, else from the CAMs.
    loaded = run.check([Input("cams", "--cams DIR", cams is not None, always=True),
                        Input("tags", "--cams DIR", ds.tags is not None or cams is not None),
                        Input("logits", "--logits DIR", logits is not None, always=True),
                        Input("features", "--features DIR", features is not None, always=True),
                        Input("labels", "pixel labels", False, readable=False)])
    probs_dir = ProbsDir(probs).require()
    cams_path = _require_dir(cams, "--cams") if "cams" in loaded else None
    logits_path = _require_dir(logits, "--logits") if "logits" in loaded else None
    feat_dir = FeaturesDir(_require_dir(features, "--features")) if "features" in loaded else None
    ids = ds.ids(split)
    run_params = {"dataset": str(Path(dataset).resolve()), "probs": str(Path(probs).resolve()), "strategy": strategy,
                  "params": run.params, "soft": soft,
                  **{k: str(Path(v).resolve()) for k, v in (("cams", cams), ("logits", logits), ("features", features)) if v}}
    with run.start(ids, run_params, device) as output:
        label_dir = LabelDir(out)
        C, dev, timer = ds.num_classes, run.device, run.timer

        def files(image_id: str) -> list[Path]:
            return [label_dir.path(image_id), *([Path(out) / f"{image_id}.npy"] if soft else [])]

        def load(chunk: list[str], size: tuple[int, int]) -> PseudoInputs:
            p = torch.from_numpy(np.stack([probs_dir.read(i, C, size) for i in chunk])).to(dev).float()
            cam_t = tag_t = logit_t = feat_t = None
            if cams_path is not None:
                raw = torch.from_numpy(np.stack([read_class_maps(cams_path / f"{i}.npy", C, "CAMs") for i in chunk]))
                cam_t = F.interpolate(raw.to(dev).float(), size=size, mode="bilinear", align_corners=False).clamp_(0, 1)
            if "tags" in loaded:
                if ds.tags is not None:
                    tag_t = torch.zeros(len(chunk), C, dtype=torch.bool)
                    for k, i in enumerate(chunk):
                        tag_t[k, ds.tags.get(i, [])] = True
                    tag_t = tag_t.to(dev)
                else:
                    tag_t = cam_t.amax(dim=(2, 3)) > 0
            if logits_path is not None:
                logit_t = torch.from_numpy(np.stack([read_class_maps(logits_path / f"{i}.npy", C, "logits", size)
                                                     for i in chunk])).to(dev).float()
            if feat_dir is not None:
                feat_t = torch.from_numpy(np.stack([feat_dir.read(i) for i in chunk])).to(dev).float()
            return PseudoInputs(chunk, probs=p, logits=logit_t, cams=cam_t, tags=tag_t, features=feat_t)

        has_gt = all(ds.has_mask(i) for i in ids)
        quality = LabelQuality(C, ds.classes) if has_gt else None
        calibration = CalibrationError() if has_gt else None
        kept = total = 0

        def account(image_id: str, labels: np.ndarray, soft_np: np.ndarray | None) -> None:
            nonlocal kept, total
            kept += int((labels != IGNORE_INDEX).sum())
            total += labels.size
            if has_gt:
                gt = ds.load_mask(image_id, labels.shape)
                quality.update(gt, labels)
                if soft_np is not None:
                    # ECE of the pseudo-label's distribution over the pixels it labels.
                    calibration.update(soft_np, np.where(labels != IGNORE_INDEX, gt, IGNORE_INDEX))

        run.todo(files)
        with timer("pseudo-label"):
            for batch in run.tracked(run.batches(load)):
                with run.strategy_errors():
                    result = labeler.label(batch)
                labels = result.labels.to(torch.uint8).cpu().numpy()
                soft_np = result.soft.float().cpu().numpy() if result.soft is not None else None
                if soft and soft_np is None:
                    raise ParameterError(f"--soft: strategy '{strategy}' makes hard labels only, found no soft labels")
                for k, image_id in enumerate(batch.ids):  # ground truth first: a bad mask stops before any write
                    account(image_id, labels[k], None if soft_np is None else soft_np[k])
                for k, image_id in enumerate(batch.ids):
                    files = [label_dir.write(image_id, labels[k], ds.palette)]
                    if soft:
                        files.append(save_npy(Path(out) / f"{image_id}.npy", soft_np[k].astype(np.float16)))
                    output.record(*files)
        for image_id in run.finished():  # finished by an earlier run
            size = run.sizes[image_id]
            prev_soft = read_class_maps(Path(out) / f"{image_id}.npy", C, "soft labels", size).astype(np.float32) \
                if soft else None
            account(image_id, label_dir.read(image_id, C, size), prev_soft)

        figures = {"kept_share": kept / total if total else 0.0, "timings": timer.seconds}
        if has_gt:
            figures["label_quality"] = quality.summary()
            if calibration.count.sum() > 0:
                figures["ece"] = calibration.ece()
        return run.report(figures)
