"""What each stage of a pipeline file may say, and how it runs: one ``Command`` per noisyseg command.

A stage's keys are its command's options. Keys that take a directory (``labels``, ``probs``,
``features``, ...) name either an earlier stage, whose output of that kind is used, or a path
(relative to the pipeline file). A command's plain options and their types come from the runner's
own signature, so a stage accepts exactly what the runner does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# What a stage's output dir provides: artifact -> (sub-directory, option that must be true for it).
PROVIDES: dict[str, dict[str, tuple[str, str | None]]] = {
    "corrupt": {"labels": ("", None)},
    "train": {"run": ("", None)},
    "predict": {"probs": ("probs", None), "features": ("features", "features"), "cams": ("cams", "cams"),
                "logits": ("logits", "logits")},
    "detect": {"labels": ("", None), "scores": ("scores", "scores")},
    "correct": {"labels": ("", None)},
    "pseudo-label": {"labels": ("", None)},
    "weight": {"weights": ("", None)},
    "report": {},
}

# Runner arguments a stage never sets: the pipeline supplies them.
SUPPLIED = {"dataset", "split", "out", "force", "track", "device", "warn", "ids"}


@dataclass(frozen=True)
class Command:
    """One stage kind.

    Args:
        name: the noisyseg command (``detect``).
        refs: key -> the artifact it takes (``{"labels": "labels", "cleaned": "labels"}``).
        strategy_kind: the strategy kind of its ``strategy`` key, if it has one.
        options: plain key -> default (its type is the default's); from the runner's signature.
        renamed: pipeline key -> runner keyword where they differ (``float`` -> ``as_float``).
        required: keys without a default.
    """

    name: str
    refs: dict[str, str]
    strategy_kind: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _runner(name: str) -> Callable:
    from noisyseg.pipeline import correct, corrupt, detect, predict, pseudo_label, report, weight

    return {"corrupt": corrupt.corrupt, "predict": predict.predict, "detect": detect.detect,
            "correct": correct.correct, "pseudo-label": pseudo_label.pseudo_label, "weight": weight.weight,
            "report": report.report}[name]


def _options(name: str, exclude: set[str], renamed: dict[str, str]) -> dict[str, Any]:
    back = {v: k for k, v in renamed.items()}
    out = {}
    for p in inspect.signature(_runner(name)).parameters.values():
        if p.name in SUPPLIED or p.name in exclude or p.default is inspect.Parameter.empty:
            continue
        out[back.get(p.name, p.name)] = p.default
    return out


def command(name: str) -> Command:
    """The ``Command`` of stage kind ``name`` (one of ``PROVIDES``)."""
    if name == "train":
        from noisyseg.pipeline.train import option_defaults

        return Command("train", {"labels": "labels", "weights": "weights", "unlabelled_labels": "labels",
                                 "unlabelled_weights": "weights"}, options=option_defaults())
    refs = {"corrupt": {},
            "predict": {"run": "run"},
            "detect": {"labels": "labels", "probs": "probs"},
            "correct": {"labels": "labels", "features": "features", "probs": "probs", "fit_labels": "labels"},
            "pseudo-label": {"probs": "probs", "cams": "cams", "logits": "logits", "features": "features"},
            "weight": {"probs": "probs", "labels": "labels"},
            "report": {"labels": "labels", "probs": "probs", "cleaned": "labels", "scores": "scores",
                       "corrected": "labels"}}[name]
    kinds = {"detect": "detection", "correct": "correction", "pseudo-label": "pseudo-labeling", "weight": "weighting"}
    renamed = {"float": "as_float"} if name == "weight" else {}
    strategy = {"strategy", "params"} if name in kinds else set()
    required = tuple(k for k, p in inspect.signature(_runner(name)).parameters.items()
                     if p.default is inspect.Parameter.empty and k not in SUPPLIED)
    return Command(name, refs, kinds.get(name), _options(name, set(refs) | strategy, renamed), renamed, required)


def run_stage(cmd: Command, dataset: Path, splits: list[str], out: Path, values: dict[str, Any], device: str,
              force: bool, track, on_step=None) -> list[dict]:
    """Runs one stage: its runner once per split (all into ``out``; ids are unique across
    splits), or one training. ``values`` hold resolved paths for references. Returns the reports."""
    if cmd.name == "train":
        from noisyseg.pipeline.train import run_train, train_config

        cfg = train_config(str(dataset), splits, str(out), device=device, **values)
        return run_train(cfg, force=force, on_step=on_step)
    runner = _runner(cmd.name)
    kwargs = {cmd.renamed.get(k, k): v for k, v in values.items()}
    reports = []
    for i, split in enumerate(splits):
        first = force and i == 0  # --force clears the dir once, then the other splits join the new run
        if cmd.name == "predict":
            rest = {k: v for k, v in kwargs.items() if k != "run"}
            reports.append(runner(kwargs["run"], dataset, split, out, device=device, force=first, track=track, **rest))
        elif cmd.name == "corrupt":
            reports.append(runner(dataset, split, out, force=first, track=track, **kwargs))
        elif cmd.name == "report":
            reports.append(runner(dataset, split, out=out / split if len(splits) > 1 else out, device=device,
                                  force=force, track=track, **kwargs))
        else:
            reports.append(runner(dataset, split, out=out, device=device, force=first, track=track, **kwargs))
    return reports
