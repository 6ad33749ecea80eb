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
from typing import Callable, Iterator

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, ParameterError
from noisyseg.io import FeaturesDir, LabelDir, ProbsDir
from noisyseg.metrics import LabelQuality
from noisyseg.pipeline.common import Track, group_by_size, no_track
from noisyseg.pipeline.runner import Input, StrategyRun
from noisyseg.strategies.correction.base import CorrectionInputs, FitContext
from noisyseg.strategies.correction.refine import CrfRefinement


def correct(dataset: str | Path, split: str, labels: str | Path, strategy: str, out: str | Path,
            features: str | Path | None = None, probs: str | Path | None = None, params: dict | None = None,
            crf: bool = False, device: str = "auto", batch_size: int = 8, force: bool = False,
            track: Track = no_track, warn: Callable[[str], None] | None = None, ids: list[str] | None = None,
            fit_split: str | None = None, fit_labels: str | Path | None = None) -> dict:
    """Runs correction strategy ``strategy`` over ``split``; returns the report (also out/report.json).

    Args:
        ids: restrict to these ids of the split (benchmarks use a subset).
        warn: called with one line per warning (the CLI prints them on stderr).
        fit_split: a split with exact masks whose holes a learning strategy (``corrector.learns``)
            trains on first; its holes come from ``fit_labels`` (default: ``labels``), its
            features and probs from the same dirs as ``split``'s.
    """
    run = StrategyRun("correct", "correction", dataset, split, strategy, params, out, batch_size, force, track)
    ds, corrector = run.ds, run.strategy
    learns = bool(getattr(corrector, "learns", False))
    if fit_labels is not None and fit_split is None:
        raise ParameterError("--fit-labels: pass --fit-split too (the split those labels are of)")
    if learns and fit_split is None:
        raise ParameterError(f"strategy '{strategy}' with these parameters learns from a split with exact masks: "
                             "pass --fit-split (e.g. the split the clean model was trained on)")
    if fit_split is not None and not learns:
        raise ParameterError(f"--fit-split: strategy '{strategy}' with these parameters does not learn from a split")
    if fit_split is not None:
        if fit_split == split:
            raise ParameterError(f"--fit-split: expected a split other than the one corrected, found '{split}'")
        shared = sorted(set(ds.ids(fit_split)) & set(ds.ids(split)))
        if shared:
            raise ParameterError(f"--fit-split: '{fit_split}' shares {len(shared)} image(s) with '{split}' "
                                 f"(e.g. '{shared[0]}'); their exact masks would teach the corrector their own answers")
        missing = [i for i in ds.ids(fit_split) if not ds.has_mask(i)]
        if missing:
            raise InputError(ds.mask_path(missing[0]), f"an exact mask for every image of fit split '{fit_split}'", "none")
    keep_clean = getattr(corrector, "keep_clean", True)
    refinements = [CrfRefinement(keep_clean)] if crf else []
    loaded = run.check([Input("features", "--features DIR", features is not None),
                        Input("probs", "--probs DIR", probs is not None),
                        Input("images", "the dataset's images", True)],
                       also_needs=[need for r in refinements for need in r.needs])
    label_dir = LabelDir(labels).require()
    fit_dir = LabelDir(fit_labels).require() if fit_labels is not None else label_dir
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
    if fit_split is not None:
        run_params.update(fit_split=fit_split, fit_labels=str(Path(fit_labels or labels).resolve()))
    with run.start(split_ids, run_params, device) as output:
        corrected_dir = LabelDir(out)
        C, dev, timer = ds.num_classes, run.device, run.timer

        def load(chunk: list[str], size: tuple[int, int], label_dir: LabelDir = label_dir) -> CorrectionInputs:
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
        fitted: dict = {}
        if learns and todo:
            fit_ids = ds.ids(fit_split)
            fit_sizes = {i: ds.image_size(i) for i in fit_ids}
            fit_chunks = group_by_size(fit_ids, fit_sizes, batch_size)

            def fit_batches() -> Iterator[tuple[CorrectionInputs, torch.Tensor]]:
                for chunk in track(fit_chunks, len(fit_chunks), f"fit: read {fit_split} ({strategy})"):
                    size = fit_sizes[chunk[0]]
                    gt = torch.from_numpy(np.stack([ds.load_mask(i, size) for i in chunk]).astype(np.int64))
                    yield load(chunk, size, fit_dir), gt.to(dev)

            with timer("fit"), run.strategy_errors():
                fitted = corrector.fit(FitContext(C, fit_batches, track))
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
        if fitted:
            figures["fit"] = fitted
        if passed:
            figures["warning"] = f"{len(passed)} image(s) had no clean pixel and were written unchanged"
        if has_gt:
            figures["input_label_quality"] = before.summary()
            figures["corrected_label_quality"] = after.summary()
        return run.report(figures)
