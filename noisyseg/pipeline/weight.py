"""``noisyseg weight``: per-pixel loss weights for a split from model outputs (and labels, images).

Writes a weights dir (``<id>.png`` uint8 weight x 255, clipped to [0, 1]; with ``as_float`` also
``<id>.npy`` float16, which keeps weights above 1 such as U2PL's λ_u). With labels and ground
truth, the report scores the weights as a noise detector: mean weight on clean and on wrong label
pixels, and the AUROC of 1 - weight for "this label is wrong". The run follows
``noisyseg.pipeline.runner``; a strategy that reads the images declares them (``needs`` or
``accepts``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.io import LabelDir, ProbsDir, WeightsDir
from noisyseg.metrics import DetectionQuality
from noisyseg.pipeline.common import Track, no_track
from noisyseg.pipeline.runner import Input, StrategyRun
from noisyseg.strategies.weighting.base import WeightInputs


def weight(dataset: str | Path, split: str, probs: str | Path, strategy: str, out: str | Path,
           params: dict | None = None, labels: str | Path | None = None, as_float: bool = False,
           device: str = "auto", batch_size: int = 8, force: bool = False, track: Track = no_track) -> dict:
    """Runs weighting strategy ``strategy`` over ``split``; returns the report (also out/report.json)."""
    run = StrategyRun("weight", "weighting", dataset, split, strategy, params, out, batch_size, force, track)
    ds, weighter = run.ds, run.strategy
    # The labels, when given, go to the strategy and score the weights; the images (cheap to load)
    # only to a strategy that needs or accepts them (URN's CRF).
    loaded = run.check([Input("labels", "--labels DIR", labels is not None, always=True, when="with these parameters"),
                        Input("images", "the dataset's images", True)])
    probs_dir = ProbsDir(probs).require()
    label_dir = LabelDir(labels).require() if "labels" in loaded else None
    ids = ds.ids(split)
    run_params = {"dataset": str(Path(dataset).resolve()), "probs": str(Path(probs).resolve()), "strategy": strategy,
                  "params": run.params, "float": as_float,
                  "labels": str(Path(labels).resolve()) if labels is not None else None}
    with run.start(ids, run_params, device) as output:
        weights_dir = WeightsDir(out)
        C, dev, timer = ds.num_classes, run.device, run.timer

        def files(image_id: str) -> list[Path]:
            return [Path(out) / f"{image_id}.png", *([Path(out) / f"{image_id}.npy"] if as_float else [])]

        def load(chunk: list[str], size: tuple[int, int]) -> WeightInputs:
            p = torch.from_numpy(np.stack([probs_dir.read(i, C, size) for i in chunk])).to(dev).float()
            lab = img = None
            if label_dir is not None:
                lab = torch.from_numpy(np.stack([label_dir.read(i, C, size) for i in chunk]).astype(np.int64)).to(dev)
            if "images" in loaded:
                img = torch.from_numpy(np.stack([ds.load_image(i) for i in chunk]))
            return WeightInputs(chunk, p, lab, img)

        score_noise = label_dir is not None and all(ds.has_mask(i) for i in ids)
        quality = DetectionQuality() if score_noise else None
        stats = {"sum": 0.0, "pixels": 0, "clipped": 0, "min": float("inf"), "max": 0.0, "clean_sum": 0.0,
                 "clean": 0, "wrong_sum": 0.0, "wrong": 0}

        def account(image_id: str, w: np.ndarray, noisy: np.ndarray | None) -> None:
            stats["sum"] += float(w.sum(dtype=np.float64))
            stats["pixels"] += w.size
            stats["clipped"] += int((w > 1).sum())
            stats["min"] = min(stats["min"], float(w.min()))
            stats["max"] = max(stats["max"], float(w.max()))
            if score_noise:
                gt = ds.load_mask(image_id, w.shape)
                valid = (gt != IGNORE_INDEX) & (noisy != IGNORE_INDEX)
                right = valid & (gt == noisy)
                wrong = valid & (gt != noisy)
                stats["clean_sum"] += float(w[right].sum())
                stats["clean"] += int(right.sum())
                stats["wrong_sum"] += float(w[wrong].sum())
                stats["wrong"] += int(wrong.sum())
                quality.update(gt, noisy, w < 1, 1.0 - np.minimum(w, 1.0))

        todo = run.todo(files)
        with timer("weight"):
            for batch in run.tracked(run.batches(load)):
                with run.strategy_errors():
                    w = weighter.weigh(batch)
                w_np = w.float().cpu().numpy()
                noisy = batch.labels.to(torch.uint8).cpu().numpy() if batch.labels is not None else None
                for k, image_id in enumerate(batch.ids):  # ground truth first: a bad mask stops before any write
                    account(image_id, w_np[k], None if noisy is None else noisy[k])
                for k, image_id in enumerate(batch.ids):
                    output.record(*weights_dir.write(image_id, w_np[k], as_float=as_float))
        for image_id in run.finished():  # finished by an earlier run
            size = run.sizes[image_id]
            account(image_id, weights_dir.read(image_id, size),
                    label_dir.read(image_id, C, size) if label_dir is not None else None)

        n = stats["pixels"]
        figures = {"mean_weight": stats["sum"] / n if n else float("nan"),
                   "min_weight": stats["min"] if n else float("nan"), "max_weight": stats["max"] if n else float("nan"),
                   "pixels_above_one": stats["clipped"], "timings": timer.seconds}
        if stats["clipped"] and not as_float:
            figures["warning"] = f"{stats['clipped']} pixels have weights above 1, clipped to 1 in the PNGs; use --float"
        seconds = timer.seconds.get("weight", 0.0)
        figures["images_per_second"] = len(todo) / seconds if seconds > 0 and todo else None
        if score_noise:
            figures["mean_weight_clean_labels"] = stats["clean_sum"] / stats["clean"] if stats["clean"] else float("nan")
            figures["mean_weight_wrong_labels"] = stats["wrong_sum"] / stats["wrong"] if stats["wrong"] else float("nan")
            figures["as_noise_detector"] = quality.summary()
        return run.report(figures)
