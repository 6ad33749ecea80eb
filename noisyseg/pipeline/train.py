"""The ``train`` runner: one validated config from the options of ``noisyseg train`` (or of a
pipeline file's train stage), then the supervised loop, the fold set or the semi-supervised loop.

Everything a user can get wrong is checked here, before a run directory is touched.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import Any, Callable

from noisyseg.errors import ParameterError

# Options that make a run semi-supervised (the semi loop's own fields beyond TrainConfig's).
SEMI_ONLY = ("unlabelled", "method", "unlabelled_labels", "unlabelled_weights", "unlabelled_batch_size",
             "pseudo_label", "pseudo_params", "weighting", "weighting_params", "teacher", "threshold", "strong_aug",
             "unsup_loss", "ema_decay", "warmup_epochs", "alpha_schedule", "contrastive_weight", "val_split", "accumulate",
             "lr_scaling")


def option_defaults() -> dict[str, Any]:
    """Every option a train run takes (besides dataset, split, out, labels, weights and device),
    with its default: TrainConfig's and SemiConfig's fields."""
    from noisyseg.train.semi import SemiConfig

    skip = {"dataset", "split", "out", "labels", "weights", "device", "fold"}
    defaults = {}
    for f in fields(SemiConfig):
        if f.name not in skip:
            defaults[f.name] = f.default_factory() if callable(f.default_factory) else f.default
    return defaults


def train_config(dataset: str, splits: list[str], out: str, labels: str | dict | None = None,
                 weights: str | dict | None = None, device: str = "auto", name: Callable[[str], str] = str,
                 **options: Any):
    """A checked ``TrainConfig``, or a ``SemiConfig`` when a semi-supervised option is set (or
    under torchrun). ``options`` are ``option_defaults()``'s keys; unknown ones are errors, and
    messages call an option ``name(key)`` (the CLI's ``--key``)."""
    from noisyseg.plugins import get_model
    from noisyseg.train.data import NORMALISATIONS
    from noisyseg.train.semi import SemiConfig
    from noisyseg.train.semi.config import plan
    from noisyseg.train.supervised import CLASS_BALANCES, FOLD_ORDERS, TrainConfig

    defaults = option_defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ParameterError(f"train has no option '{unknown[0]}'; its options: {', '.join(defaults)}")
    given = {**defaults, **options}
    if given["normalisation"] not in ("model", *NORMALISATIONS):
        raise ParameterError(f"{name('normalisation')}: expected model, {', '.join(NORMALISATIONS)}, "
                             f"found '{given['normalisation']}'")
    if given["class_balance"] not in CLASS_BALANCES:
        raise ParameterError(f"{name('class_balance')}: expected {' or '.join(CLASS_BALANCES)}, found '{given['class_balance']}'")
    if given["fold_order"] not in FOLD_ORDERS:
        raise ParameterError(f"{name('fold_order')}: expected {' or '.join(FOLD_ORDERS)}, found '{given['fold_order']}'")
    if not 0 < given["scale_min"] <= given["scale_max"]:
        raise ParameterError(f"scale range: expected 0 < LO <= HI, found {given['scale_min']},{given['scale_max']}")
    if not splits or len(set(splits)) != len(splits) or any(not name or "+" in name for name in splits):
        raise ParameterError(f"{name('split')}: expected distinct split names without '+', found {', '.join(splits) or 'none'}")
    if given["full"] and given["folds"] < 2:
        raise ParameterError(f"{name('full')}: expected {name('folds')} K > 1 (a full model beside a fold set), "
                             f"found {name('folds')} {given['folds']}")
    get_model(given["model"]).resolve(given["model_params"])
    base = {k: given[k] for k in (f.name for f in fields(TrainConfig)) if k in given}
    cfg = TrainConfig(dataset=str(dataset), split="+".join(splits), out=str(out), labels=labels, weights=weights,
                      device=device, **base)
    semi_given = [k for k in SEMI_ONLY
                  if options.get(k) not in (None, defaults[k]) or k in ("method", "unlabelled") and options.get(k)]
    if not semi_given and _world_size() == 1:
        return cfg
    if given["folds"] > 1:
        raise ParameterError(f"{name('folds')}: expected 1 with {semi_given[0] if semi_given else 'torchrun'} (semi-supervised "
                             f"runs train one model), found {given['folds']}")
    semi = {k: given[k] for k in SEMI_ONLY}
    if "method" not in semi_given and not given["unlabelled"]:
        semi["method"] = "supervised"
    if (given["unlabelled_labels"] or given["unlabelled_weights"]) and not given["unlabelled"]:
        raise ParameterError(f"{name('unlabelled_labels')}/{name('unlabelled_weights')}: expected {name('unlabelled')} SPLIT, "
                             "found none")
    semi_cfg = SemiConfig(**asdict(cfg), **semi)
    plan(semi_cfg)  # the method, its parts and their parameters
    return semi_cfg


def run_train(cfg, force: bool = False, on_step: Callable | None = None, on_epoch: Callable | None = None,
              on_fold: Callable[[int], None] | None = None) -> list[dict]:
    """Trains ``cfg`` (see :func:`train_config`); returns one report per model trained (K for a
    fold set). ``on_step(epoch, step, steps, loss)``, with the semi loop's dict of loss terms as
    ``loss``."""
    from noisyseg.train.semi import SemiConfig, train_semi
    from noisyseg.train.supervised import train, train_folds

    if isinstance(cfg, SemiConfig):
        return [train_semi(cfg, force=force, on_step=on_step, on_epoch=on_epoch)]
    if cfg.folds > 1:
        return train_folds(cfg, force=force, on_step=on_step, on_fold=on_fold)
    return [train(cfg, force=force, on_step=on_step)]


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
