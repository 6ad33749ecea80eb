"""``noisyseg correct``: fill the holes (255) of a label dir with a correction strategy.

Reads the cleaned labels (holes = untrusted pixels), and as the strategy declares them (``needs``,
``accepts``) the images, a features dir and a probs dir; writes a label dir, ``report.json`` with
per-stage timings (slic, graph, train, predict, crf, plus load and write) and, with ground truth,
the quality of the input and output labels. With ``crf=True`` a dense CRF refines the strategy's
output (``noisyseg.strategies.correction.refine``, a post-step that declares the images it needs).
Images without a single clean pixel are written unchanged and listed in the report's
``passed_through`` with a warning. The run follows ``noisyseg.pipeline.runner``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, ParameterError
from noisyseg.io import FeaturesDir, LabelDir, ProbsDir
from noisyseg.metrics import LabelQuality
from noisyseg.pipeline.common import Track, no_track
from noisyseg.pipeline.runner import Input, StrategyRun
from noisyseg.strategies.correction.base import CorrectionInputs
from noisyseg.strategies.correction.refine import CrfRefinement


def correct(dataset: str | Path, split: str, labels: str | Path, strategy: str, out: str | Path,
            features: str | Path | None = None, probs: str | Path | None = None, params: dict | None = None,
            crf: bool = False, device: str = "auto", batch_size: int = 8, force: bool = False,
            track: Track = no_track, warn: Callable[[str], None] | None = None, ids: list[str] | None = None) -> dict:
    """Runs correction strategy ``strategy`` over ``split``; returns the report (also out/report.json).

    Args:
        ids: restrict to these ids of the split (benchmarks use a subset).
        warn: called with one line per warning (the CLI prints them on stderr).
    """
    run = StrategyRun("correct", "correction", dataset, split, strategy, params, out, batch_size, force, track)
    ds, corrector = run.ds, run.strategy
    keep_clean = getattr(corrector, "keep_clean", True)
    refinements = [CrfRefinement(keep_clean)] if crf else []
    loaded = run.check([Input("features", "--features DIR", features is not None),
                        Input("probs", "--probs DIR", probs is not None),
                        Input("images", "the dataset's images", True)],
                       also_needs=[need for r in refinements for need in r.needs])
    label_dir = LabelDir(labels).require()
    feat_dir = FeaturesDir(features).require() if "features" in loaded else None
    probs_dir = ProbsDir(probs).require() if "probs" in loaded else None
    split_ids = ds.ids(split)
    if ids is not None:
        unknown = sorted(set(ids) - set(split_ids))
        if unknown:
            raise ParameterError(f"image id '{unknown[0]}' is not in split '{split}'")
        split_ids = [i for i in split_ids if i in set(ids)]
    run_params = {"dataset": str(Path(dataset).resolve()), "labels": str(Path(labels).resolve()),
                  "features": str(Path(features).resolve()) if features is not None else None,
                  "probs": str(Path(probs).resolve()) if probs is not None else None,
                  "strategy": strategy, "params": run.params, "crf": crf}
    with run.start(split_ids, run_params, device) as output:
        corrected_dir = LabelDir(out)
        C, dev, timer = ds.num_classes, run.device, run.timer

        def load(chunk: list[str], size: tuple[int, int]) -> CorrectionInputs:
            with timer("load"):
                lab = torch.from_numpy(np.stack([label_dir.read(i, C, size) for i in chunk]).astype(np.int64)).to(dev)
                img = feat = p = None
                if "images" in loaded:
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
            return CorrectionInputs(chunk, lab, C, img, feat, p)

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

        todo = run.todo(lambda i: [corrected_dir.path(i)])
        for batch in run.tracked(run.batches(load)):
            with run.strategy_errors():
                result = corrector.correct(batch)
            timer.add(result.timings)
            fixed = result.labels
            for refinement in refinements:
                with timer(refinement.stage):
                    fixed = refinement.refine(fixed, batch, result.passed_through)
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
        for image_id in run.finished():  # finished by an earlier run
            size = run.sizes[image_id]
            account(image_id, label_dir.read(image_id, C, size), corrected_dir.read(image_id, C, size))

        work = sum(v for k, v in timer.seconds.items() if k not in ("load", "write"))
        figures = {"passed_through": passed,
                   "hole_share": counts["holes"] / counts["pixels"] if counts["pixels"] else 0.0,
                   "filled_share": counts["filled"] / counts["holes"] if counts["holes"] else 0.0,
                   "timings": timer.seconds, "seconds_per_image": work / len(todo) if todo else None}
        if passed:
            figures["warning"] = f"{len(passed)} image(s) had no clean pixel and were written unchanged"
        if has_gt:
            figures["input_label_quality"] = before.summary()
            figures["corrected_label_quality"] = after.summary()
        return run.report(figures)
