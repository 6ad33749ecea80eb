"""``noisyseg weight``: per-pixel loss weights for a split from model outputs (and labels, images).

Writes a weights dir (``<id>.png`` uint8 weight x 255, clipped to [0, 1]; with ``as_float`` also
``<id>.npy`` float16, which keeps weights above 1 such as U2PL's λ_u). With labels and ground
truth, the report scores the weights as a noise detector: mean weight on clean and on wrong label
pixels, and the AUROC of 1 - weight for "this label is wrong".
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import ParameterError
from noisyseg.io import Dataset, LabelDir, ProbsDir, WeightsDir
from noisyseg.metrics import DetectionQuality
from noisyseg.pipeline.common import OutputDir, Timer, Track, group_by_size, no_track, select_device, write_report
from noisyseg.strategies.weighting.base import WeightInputs


def weight(dataset: str | Path, split: str, probs: str | Path, strategy: str, out: str | Path,
           params: dict | None = None, labels: str | Path | None = None, as_float: bool = False,
           device: str = "auto", batch_size: int = 8, force: bool = False, track: Track = no_track) -> dict:
    """Runs weighting strategy ``strategy`` over ``split``; returns the report (also out/report.json)."""
    from noisyseg.plugins import get_strategy

    ds = Dataset(dataset)
    spec = get_strategy("weighting", strategy)
    resolved = spec.resolve(params)
    weighter = spec.factory(**resolved)
    needs = set(getattr(weighter, "needs", ("probs",)))
    if "labels" in needs and labels is None:
        raise ParameterError(f"strategy '{strategy}' with these parameters needs --labels DIR, found none given")
    probs_dir = ProbsDir(probs).require()
    label_dir = LabelDir(labels).require() if labels is not None else None
    # Images are cheap to load and URN's CRF uses them; other strategies ignore them.
    want_images = "images" in needs or strategy == "urn" or "images" in getattr(weighter, "optional", ())
    ids = ds.ids(split)
    dev = select_device(device)
    run_params = {"dataset": str(Path(dataset).resolve()), "probs": str(Path(probs).resolve()), "strategy": strategy,
                  "params": resolved, "float": as_float,
                  "labels": str(Path(labels).resolve()) if labels is not None else None}
    sizes = {i: ds.image_size(i) for i in ids}  # every image header is read before anything is written
    with OutputDir(out, "weight", run_params, force) as output:
        run_params["split"] = split
        weights_dir = WeightsDir(out)
        C = ds.num_classes
        timer = Timer()

        def done(image_id: str) -> bool:
            return output.done(Path(out) / f"{image_id}.png") and (not as_float or output.done(Path(out) / f"{image_id}.npy"))

        def batches(todo: list[str]) -> Iterator[WeightInputs]:
            for chunk in group_by_size(todo, sizes, batch_size):
                size = sizes[chunk[0]]
                p = torch.from_numpy(np.stack([probs_dir.read(i, C, size) for i in chunk])).to(dev).float()
                lab = img = None
                if label_dir is not None:
                    lab = torch.from_numpy(np.stack([label_dir.read(i, C, size) for i in chunk]).astype(np.int64)).to(dev)
                if want_images:
                    img = torch.from_numpy(np.stack([ds.load_image(i) for i in chunk]))
                yield WeightInputs(chunk, p, lab, img)

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

        todo = [i for i in ids if not done(i)]
        with timer("weight"):
            for batch in track(batches(todo), -(-len(todo) // batch_size), f"weight {split} ({strategy})"):
                try:
                    w = weighter.weigh(batch)
                except ValueError as e:
                    raise ParameterError(f"strategy '{strategy}': {e}") from None
                w_np = w.float().cpu().numpy()
                noisy = batch.labels.to(torch.uint8).cpu().numpy() if batch.labels is not None else None
                for k, image_id in enumerate(batch.ids):  # ground truth first: a bad mask stops before any write
                    account(image_id, w_np[k], None if noisy is None else noisy[k])
                for k, image_id in enumerate(batch.ids):
                    output.record(*weights_dir.write(image_id, w_np[k], as_float=as_float))
        for image_id in sorted(set(ids) - set(todo)):  # finished by an earlier run
            size = sizes[image_id]
            account(image_id, weights_dir.read(image_id, size),
                    label_dir.read(image_id, C, size) if label_dir is not None else None)

        n = stats["pixels"]
        report = {"command": "weight", **run_params, "images": len(ids), "skipped": len(ids) - len(todo),
                  "mean_weight": stats["sum"] / n if n else float("nan"),
                  "min_weight": stats["min"] if n else float("nan"), "max_weight": stats["max"] if n else float("nan"),
                  "pixels_above_one": stats["clipped"], "timings": timer.seconds}
        if stats["clipped"] and not as_float:
            report["warning"] = f"{stats['clipped']} pixels have weights above 1, clipped to 1 in the PNGs; use --float"
        seconds = timer.seconds.get("weight", 0.0)
        report["images_per_second"] = len(todo) / seconds if seconds > 0 and todo else None
        if score_noise:
            report["mean_weight_clean_labels"] = stats["clean_sum"] / stats["clean"] if stats["clean"] else float("nan")
            report["mean_weight_wrong_labels"] = stats["wrong_sum"] / stats["wrong"] if stats["wrong"] else float("nan")
            report["as_noise_detector"] = quality.summary()
        return write_report(out, report)
