"""``noisyseg correct``: fill the holes (255) of a label dir with a correction strategy.

Reads the cleaned labels (holes = untrusted pixels), and as the strategy needs them the images,
a features dir and a probs dir; writes a label dir, ``report.json`` with per-stage timings
(slic, graph, train, predict, crf, plus load and write) and, with ground truth, the quality of the
input and output labels. With ``crf=True`` a dense CRF refines the strategy's output
(``noisyseg.strategies.correction.crf.crf_refine``). Images without a single clean pixel are
written unchanged and listed in the report's ``passed_through`` with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, ParameterError
from noisyseg.io import Dataset, FeaturesDir, LabelDir, ProbsDir
from noisyseg.metrics import LabelQuality
from noisyseg.pipeline.common import OutputDir, Timer, Track, group_by_size, no_track, select_device, write_report
from noisyseg.strategies.correction.base import CorrectionInputs

_NEED_FLAG = {"features": "--features DIR", "probs": "--probs DIR", "images": "the dataset's images"}


def correct(dataset: str | Path, split: str, labels: str | Path, strategy: str, out: str | Path,
            features: str | Path | None = None, probs: str | Path | None = None, params: dict | None = None,
            crf: bool = False, device: str = "auto", batch_size: int = 8, force: bool = False,
            track: Track = no_track, warn: Callable[[str], None] | None = None, ids: list[str] | None = None) -> dict:
    """Runs correction strategy ``strategy`` over ``split``; returns the report (also out/report.json).

    Args:
        ids: restrict to these ids of the split (benchmarks use a subset).
        warn: called with one line per warning (the CLI prints them on stderr).
    """
    from noisyseg.plugins import get_strategy

    ds = Dataset(dataset)
    spec = get_strategy("correction", strategy)
    resolved = spec.resolve(params)
    corrector = spec.factory(**resolved)
    needs = set(corrector.needs) | ({"images"} if crf else set())
    given = {"features": features, "probs": probs, "images": True}
    for need in sorted(needs):
        if given[need] is None:
            raise ParameterError(f"strategy '{strategy}' needs {_NEED_FLAG[need]}, found none given")
    label_dir = LabelDir(labels).require()
    feat_dir = FeaturesDir(features).require() if features is not None and "features" in needs else None
    probs_dir = ProbsDir(probs).require() if probs is not None and "probs" in needs else None
    split_ids = ds.ids(split)
    if ids is not None:
        unknown = sorted(set(ids) - set(split_ids))
        if unknown:
            raise ParameterError(f"image id '{unknown[0]}' is not in split '{split}'")
        split_ids = [i for i in split_ids if i in set(ids)]
    dev = select_device(device)
    run_params = {"dataset": str(Path(dataset).resolve()), "labels": str(Path(labels).resolve()),
                  "features": str(Path(features).resolve()) if features is not None else None,
                  "probs": str(Path(probs).resolve()) if probs is not None else None,
                  "strategy": strategy, "params": resolved, "crf": crf}
    sizes = {i: ds.image_size(i) for i in split_ids}  # every image header is read before anything is written
    with OutputDir(out, "correct", run_params, force) as output:
        run_params["split"] = split
        corrected_dir = LabelDir(out)
        C = ds.num_classes
        timer = Timer()

        def batches(todo: list[str]) -> Iterator[CorrectionInputs]:
            for chunk in group_by_size(todo, sizes, batch_size):
                with timer("load"):
                    size = sizes[chunk[0]]
                    lab = torch.from_numpy(np.stack([label_dir.read(i, C, size) for i in chunk]).astype(np.int64)).to(dev)
                    img = feat = p = None
                    if "images" in needs:
                        img = torch.from_numpy(np.stack([ds.load_image(i) for i in chunk]))
                    if feat_dir is not None:
                        arrays = [feat_dir.read(i) for i in chunk]
                        first = arrays[0].shape
                        for i, a in zip(chunk, arrays):
                            if a.shape != first:
                                raise InputError(feat_dir.path(i), f"features of shape {first} like '{chunk[0]}'", f"shape {a.shape}")
                        feat = torch.from_numpy(np.stack(arrays)).to(dev).float()
                    if probs_dir is not None:
                        p = torch.from_numpy(np.stack([probs_dir.read(i, C, size) for i in chunk])).to(dev).float()
                yield CorrectionInputs(chunk, lab, C, img, feat, p)

        has_gt = all(ds.has_mask(i) for i in split_ids)
        before = LabelQuality(C, ds.classes) if has_gt else None
        after = LabelQuality(C, ds.classes) if has_gt else None
        counts = {"holes": 0, "filled": 0, "pixels": 0}
        passed: list[str] = []

        def account(image_id: str, noisy: np.ndarray, fixed: np.ndarray) -> None:
            holes = noisy == IGNORE_INDEX
            counts["holes"] += int(holes.sum())
            counts["filled"] += int((holes & (fixed != IGNORE_INDEX)).sum())
            counts["pixels"] += noisy.size
            if has_gt:
                gt = ds.load_mask(image_id, noisy.shape)
                before.update(gt, noisy)
                after.update(gt, fixed)

        todo = [i for i in split_ids if not output.done(corrected_dir.path(i))]
        keep_clean = getattr(corrector, "keep_clean", True)
        for batch in track(batches(todo), -(-len(todo) // batch_size), f"correct {split} ({strategy})"):
            try:
                result = corrector.correct(batch)
            except ValueError as e:
                raise ParameterError(f"strategy '{strategy}': {e}") from None
            timer.add(result.timings)
            fixed = result.labels
            if crf:
                from noisyseg.strategies.correction.crf import crf_refine

                with timer("crf"):
                    refined = crf_refine(fixed, batch.labels, batch.images, C, keep_clean=keep_clean)
                    fixed = torch.where(result.passed_through[:, None, None].to(fixed.device), fixed, refined)
            with timer("write"):
                fixed_np = fixed.to(torch.uint8).cpu().numpy()
                noisy_np = batch.labels.to(torch.uint8).cpu().numpy()
                for k, image_id in enumerate(batch.ids):  # ground truth first: a bad mask stops before any write
                    account(image_id, noisy_np[k], fixed_np[k])
                for k, image_id in enumerate(batch.ids):
                    output.record(corrected_dir.write(image_id, fixed_np[k], ds.palette))
                    if bool(result.passed_through[k]):
                        passed.append(image_id)
                        if warn is not None:
                            warn(f"{label_dir.path(image_id)}: no clean pixel to correct from; written unchanged")
        for image_id in sorted(set(split_ids) - set(todo)):  # finished by an earlier run
            size = sizes[image_id]
            account(image_id, label_dir.read(image_id, C, size), corrected_dir.read(image_id, C, size))

        work = sum(v for k, v in timer.seconds.items() if k not in ("load", "write"))
        report = {"command": "correct", **run_params, "images": len(split_ids), "skipped": len(split_ids) - len(todo),
                  "passed_through": passed,
                  "hole_share": counts["holes"] / counts["pixels"] if counts["pixels"] else 0.0,
                  "filled_share": counts["filled"] / counts["holes"] if counts["holes"] else 0.0,
                  "timings": timer.seconds, "seconds_per_image": work / len(todo) if todo else None}
        if passed:
            report["warning"] = f"{len(passed)} image(s) had no clean pixel and were written unchanged"
        if has_gt:
            report["input_label_quality"] = before.summary()
            report["corrected_label_quality"] = after.summary()
        return write_report(out, report)
