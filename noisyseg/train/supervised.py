"""Supervised training with ignore 255 and optional per-pixel weights; resumable per epoch.

Loss: weighted CE over the labelled pixels (per-pixel weights, times median-frequency class
weights with ``class_balance="median"``), plus (when the model has an image classifier)
``cls_weight`` x multi-label BCE on image tags. SGD with momentum, poly learning-rate decay.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from noisyseg.errors import InputError, NoisySegError, OutputExistsError
from noisyseg.io import Dataset
from noisyseg.io.atomic import write_json
from noisyseg.io.claim import Claim, remove_temp_files
from noisyseg.io.lock import has_files
from noisyseg.losses import weighted_cross_entropy
from noisyseg.runtime import check_seed, environment, select_device
from noisyseg.timing import Timer
from noisyseg.losses.class_balance import class_pixel_counts, median_frequency_weights
from noisyseg.train.checkpoint import build_model, resume, save_checkpoint
from noisyseg.train.data import NORMALISATIONS, SegmentationSamples, poly_lr


@dataclass
class TrainConfig:
    """One training run. ``split`` names one split or several joined by ``+`` (``val+train``:
    a few exact masks and many cleaned ones, learnt together). ``labels`` and ``weights`` are one
    dir for every split, or a dict split -> dir (None or absent: the dataset's masks / weight 1)."""

    dataset: str
    split: str
    out: str
    labels: str | dict | None = None
    weights: str | dict | None = None
    model: str = "efficientnet-lite0"
    model_params: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 8
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop_size: int = 320
    scale_min: float = 0.5
    scale_max: float = 1.5
    input_scale: float = 1.0
    jitter: float = 0.4
    normalisation: str = "model"
    backbone_lr: float = 0.5
    class_balance: str = "median"
    folds: int = 1
    fold: int = 0
    fold_order: str = "contiguous"
    full: bool = False
    cls_weight: float = 0.1
    seed: int = 0
    device: str = "auto"


# on_step(epoch, step, steps_per_epoch, loss) is called after every optimiser step.
StepHook = Callable[[int, int, int, float], None]


# Options added after a run was written take these values in its saved config.
_DEFAULTS = {"input_scale": 1.0, "jitter": 0.0, "normalisation": "imagenet", "class_balance": "none", "folds": 1,
             "fold": 0, "backbone_lr": 1.0, "full": False, "fold_order": "contiguous"}
CLASS_BALANCES = ("none", "median")
FOLD_ORDERS = ("contiguous", "interleaved")


def parameter_groups(model: torch.nn.Module, weight_decay: float, backbone_lr: float) -> list[dict]:
    """SGD parameter groups: weight decay on weights (not on biases and norms), and the learning
    rate scaled by ``backbone_lr`` for parameters under ``model.backbone`` (a pretrained encoder
    learns at a tenth of the head's rate in the semi-supervised codebases). Each group carries
    ``lr_scale``, the factor the schedule's rate is multiplied by."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        groups.setdefault((name.startswith("backbone."), p.ndim > 1), []).append(p)
    return [{"params": params, "weight_decay": weight_decay if decay else 0.0,
             "lr_scale": backbone_lr if backbone else 1.0}
            for (backbone, decay), params in sorted(groups.items())]


def fold_block(ids: list[str], folds: int, fold: int, order: str = "contiguous") -> list[str]:
    """The images fold ``fold`` of ``folds`` leaves out: the ``fold``-th contiguous block of ``ids``
    (in split order; neighbouring frames of a video are near-duplicates, so a held-out image's
    neighbours are held out with it), or with ``order="interleaved"`` every ``folds``-th image from
    the ``fold``-th (its neighbours stay in training, as the frames of a split drawn between the
    labelled ones are to a model trained on all of them)."""
    if order == "interleaved":
        return ids[fold::folds]
    n = len(ids)
    return ids[fold * n // folds:(fold + 1) * n // folds]


def split_ids(ds: Dataset, split: str) -> dict[str, list[str]]:
    """``split`` (``a`` or ``a+b+...``) -> {split name: its ids}; raises for an empty split or an
    image listed by two of them."""
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for name in split.split("+"):
        ids = ds.ids(name)
        if not ids:
            raise NoisySegError(f"split '{name}' of {ds.root} lists no image")
        for image_id in ids:
            if image_id in seen:
                raise NoisySegError(f"image '{image_id}' is in both split '{seen[image_id]}' and '{name}' of {ds.root}")
            seen[image_id] = name
        out[name] = ids
    return out


def held_out_ids(per_split: dict[str, list[str]], folds: int, fold: int, order: str = "contiguous") -> list[str]:
    """The images fold ``fold`` leaves out: ``fold_block`` of every split, so each fold keeps the
    same share of each kind of label."""
    return [i for ids in per_split.values() for i in fold_block(ids, folds, fold, order)]


def per_image(source: str | dict | None, per_split: dict[str, list[str]]) -> dict[str, str | None]:
    """A labels/weights setting (one dir, split -> dir, or None) -> {image id: dir or None}."""
    if not isinstance(source, dict):
        return {i: source for ids in per_split.values() for i in ids}
    return {i: source.get(name) for name, ids in per_split.items() for i in ids}


def _resolved(source: str | dict | None) -> str | dict | None:
    if isinstance(source, dict):
        return {k: str(Path(v).resolve()) if v else None for k, v in source.items()}
    return str(Path(source).resolve()) if source else None


def _same_run(saved: dict, config: dict) -> bool:
    keys = set(saved) | set(config)
    return all(saved.get(k, _DEFAULTS.get(k)) == config.get(k) for k in keys - {"device", "out"})


def train(cfg: TrainConfig, force: bool = False, on_step: StepHook | None = None,
          on_epoch: Callable[[int, float], None] | None = None) -> dict:
    """Trains a model into ``cfg.out``; resumes from its checkpoint when the config is unchanged.

    The inputs and the model are checked before ``cfg.out`` is touched, and a run that fails before
    its first checkpoint removes the config.json it wrote, so the corrected command can be rerun."""
    if cfg.class_balance not in CLASS_BALANCES:
        raise NoisySegError(f"class_balance must be one of {', '.join(CLASS_BALANCES)}, got '{cfg.class_balance}'")
    check_seed(cfg.seed)
    ds = Dataset(cfg.dataset)
    per_split = split_ids(ds, cfg.split)
    ids = [i for split in per_split.values() for i in split]
    if cfg.folds > 1:
        held_out = set(held_out_ids(per_split, cfg.folds, cfg.fold, cfg.fold_order))
        ids = [i for i in ids if i not in held_out]
    else:  # a run on every image: the fold order does not touch it, so its config does not say one
        cfg = replace(cfg, fold_order=_DEFAULTS["fold_order"])
    from noisyseg.plugins import get_model

    spec = get_model(cfg.model)
    model_params = spec.resolve(cfg.model_params)
    if cfg.normalisation == "model":  # the model says what its (pretrained) weights expect
        cfg = replace(cfg, normalisation=spec.normalisation)
    if cfg.normalisation not in NORMALISATIONS:
        raise NoisySegError(f"normalisation must be model or one of {', '.join(NORMALISATIONS)}, got '{cfg.normalisation}'")
    config = asdict(cfg) | {"model_params": model_params, "num_classes": ds.num_classes, "classes": ds.classes,
                            "dataset": str(Path(cfg.dataset).resolve()),
                            "labels": _resolved(cfg.labels), "weights": _resolved(cfg.weights)}
    device = select_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(config).to(device)
    out = Path(cfg.out)
    with Claim(out, "noisyseg train", written=(out / "checkpoint.pt").is_file) as claim:
        if has_files(out) and not force:
            saved = _read_object(out / "config.json")
            if saved is None:
                raise OutputExistsError(out, "files not written by noisyseg train")
            if saved == "unreadable":
                raise InputError(out / "config.json", "a run config written by 'noisyseg train' (or --force to start "
                                 "over)", "an unreadable file")
            if not _same_run(saved, config):
                raise OutputExistsError(out, "a run with another configuration")
            remove_temp_files(out)
        return _train(cfg, ds, per_split, ids, config, model, device, force, claim, on_step, on_epoch)


def _read_object(path: Path) -> dict | str | None:
    """A JSON object noisyseg wrote (config.json, folds.json); None without the file,
    ``"unreadable"`` for a damaged one."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "unreadable"
    return saved if isinstance(saved, dict) else "unreadable"


def _train(cfg: TrainConfig, ds: Dataset, per_split: dict[str, list[str]], ids: list[str], config: dict,
           model: torch.nn.Module, device: torch.device, force: bool, claim: Claim,
           on_step: StepHook | None, on_epoch: Callable[[int, float], None] | None) -> dict:
    """The body of :func:`train`, run while holding the run directory's claim."""
    out = Path(cfg.out)
    config_path, ckpt_path, model_path = out / "config.json", out / "checkpoint.pt", out / "model.pt"
    if force:  # start over: nothing of the replaced run stays to be taken for this one's
        for p in (ckpt_path, model_path, out / "report.json", config_path):
            p.unlink(missing_ok=True)
    optimizer = torch.optim.SGD(parameter_groups(model, cfg.weight_decay, cfg.backbone_lr), lr=cfg.lr,
                                momentum=cfg.momentum)
    samples = SegmentationSamples(ds, ids, per_image(cfg.labels, per_split), per_image(cfg.weights, per_split), cfg.crop_size, (cfg.scale_min, cfg.scale_max),
                                  seed=cfg.seed, input_scale=cfg.input_scale, jitter=cfg.jitter,
                                  normalisation=cfg.normalisation)
    class_weights = None
    if cfg.class_balance == "median":  # from the labels this run learns (each fold its own)
        counts = class_pixel_counts((samples.load(i)[1] for i in ids), ds.num_classes)
        class_weights = median_frequency_weights(*counts).to(device)
    batch_size = min(cfg.batch_size, len(ids))
    steps_per_epoch = max(1, len(ids) // batch_size)
    total_steps = cfg.epochs * steps_per_epoch

    start_epoch, history = 0, []
    if ckpt_path.is_file():
        start_epoch, history = resume(ckpt_path, model, optimizer, samples.generator, device)
    if force or _read_object(config_path) != config:  # written once the run is sure to start or resume
        if not ckpt_path.is_file():
            claim.stake(config_path)
        write_json(config_path, config)

    timer = Timer()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = torch.randperm(len(ids), generator=samples.generator).tolist()
        losses = []
        with timer("train"):
            for step in range(steps_per_epoch):
                batch = [samples[i] for i in order[step * batch_size:(step + 1) * batch_size]]
                images, labels, weights, tags = (torch.stack(x).to(device) for x in zip(*batch))
                lr = poly_lr(cfg.lr, epoch * steps_per_epoch + step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["lr_scale"]
                out_dict = model(images)
                if class_weights is not None:
                    weights = weights * class_weights[labels.clamp(max=ds.num_classes - 1)]
                loss = weighted_cross_entropy(out_dict["logits"], labels,
                                              weights if cfg.weights or class_weights is not None else None)
                if cfg.cls_weight > 0 and "class_logits" in out_dict:
                    loss = loss + cfg.cls_weight * F.binary_cross_entropy_with_logits(out_dict["class_logits"], tags)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                if on_step:
                    on_step(epoch, step, steps_per_epoch, losses[-1])
        history.append(sum(losses) / len(losses))
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "epoch": epoch + 1, "history": history, "rng": torch.get_rng_state(),
                                    "data_rng": samples.generator.get_state()})
        if on_epoch:
            on_epoch(epoch, history[-1])
    save_checkpoint(model_path, {"model": model.state_dict()})
    report = {"command": "train", "config": config, "epochs": cfg.epochs, "resumed_from_epoch": start_epoch,
              "loss_per_epoch": history, "timings": timer.seconds,
              "class_weights": None if class_weights is None else dict(zip(ds.classes, class_weights.tolist())),
              "device": str(device), "versions": environment()}
    write_json(out / "report.json", report)
    return report


def train_folds(cfg: TrainConfig, force: bool = False, on_step: StepHook | None = None,
                on_fold: Callable[[int], None] | None = None) -> list[dict]:
    """K-fold training for out-of-fold predictions: ``cfg.out/fold<k>`` is a complete run trained
    without the k-th contiguous block of the split (of each split, when several are named), and
    ``cfg.out/folds.json`` lists the blocks. With ``cfg.full``, ``cfg.out/full`` is one more run on
    every image.
    ``noisyseg predict`` on ``cfg.out`` then gives each held-out image its own fold's prediction
    (not fitted on it: honest probabilities for calibration) and every other image the mean of
    the folds, or the full model's prediction when there is one. Each model resumes like a single run."""
    if cfg.folds < 2:
        raise NoisySegError(f"train_folds: folds must be >= 2, got {cfg.folds}")
    ds = Dataset(cfg.dataset)
    per_split = split_ids(ds, cfg.split)
    for name, ids in per_split.items():
        if len(ids) < cfg.folds:
            raise NoisySegError(f"split '{name}' of {cfg.dataset} has {len(ids)} images, fewer than {cfg.folds} folds")
    out = Path(cfg.out)
    index = {"folds": cfg.folds, "split": cfg.split,
             "fold_order": cfg.fold_order,
             "held_out": {f"fold{k}": held_out_ids(per_split, cfg.folds, k, cfg.fold_order) for k in range(cfg.folds)}}
    if cfg.full:
        index["full"] = FULL_RUN  # absent without, so older fold sets still resume
    index_path = out / FOLDS_FILE
    with Claim(out, "noisyseg train --folds", written=lambda: any(out.glob("fold*/checkpoint.pt"))) as claim:
        saved = _read_object(index_path)
        if has_files(out) and not force:
            if saved is None:
                raise OutputExistsError(out, "files not written by noisyseg train --folds")
            if saved == "unreadable":
                raise InputError(index_path, "a fold index written by 'noisyseg train --folds' (or --force to start "
                                 "over)", "an unreadable file")
            if not isinstance(saved, dict) or {**saved, "full": None} != {**index, "full": None}:
                raise OutputExistsError(out, "a fold set of another split or fold count")  # a full model may be added
        if saved != index:
            claim.stake(index_path)
            write_json(index_path, index)
        reports = []
        for k in range(cfg.folds):
            if on_fold:
                on_fold(k)
            reports.append(train(replace(cfg, out=str(out / f"fold{k}"), fold=k, full=False), force=force,
                                 on_step=on_step))
        if cfg.full:
            if on_fold:
                on_fold(cfg.folds)
            reports.append(train(replace(cfg, out=str(out / FULL_RUN), folds=1, fold=0, full=False), force=force,
                                 on_step=on_step))
        return reports


FOLDS_FILE = "folds.json"
FULL_RUN = "full"  # the fold set's model on every image (train --folds K --full)
