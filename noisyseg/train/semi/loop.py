"""``train_semi``: the semi-supervised loop, resumable per epoch, on one process or many.

Each optimiser step takes ``accumulate`` micro-batches; each micro-batch is a labelled batch and an
unlabelled batch per process (see ``step.SemiStep``). An epoch is one pass over the unlabelled
split (the labelled stream cycles as often as it must); ``supervised`` runs pass over the labelled
split. With an EMA teacher, the teacher is updated after every optimiser step of the
semi-supervised epochs (``teacher.ema_update``); during warm-up epochs only the labelled loss
trains the student, and the first semi-supervised step starts from a teacher that is a copy of the
student as the warm-up left it (not of the initial weights).

Run directory: ``config.json``; ``checkpoint.pt`` after each epoch (student, teacher, optimiser,
memory bank, histories); ``best.pt`` (with ``val_split``: the best model so far, student or
teacher); ``model.pt`` at the end: the best validated model, else the EMA teacher when there is
one, else the student, so ``noisyseg predict RUN`` works as for supervised runs; ``report.json``
says which (``predict_with``).

Under ``torchrun`` every rank runs this function; rank 0 writes the files. See ``distributed`` for
why N processes reproduce one process with the total batch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import resource
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch

from noisyseg.errors import NoisySegError, OutputExistsError
from noisyseg.io import Dataset
from noisyseg.io.atomic import write_json
from noisyseg.io.lock import has_files, locked
from noisyseg.runtime import environment, select_device
from noisyseg.strategies.pseudo_labeling.entropy_filter import alpha_schedule
from noisyseg.timing import Timer
from noisyseg.train.checkpoint import build_model, load_checkpoint, save_checkpoint
from noisyseg.losses.class_balance import class_pixel_counts, median_frequency_weights
from noisyseg.train.data import NORMALISATIONS, SegmentationSamples, poly_lr
from noisyseg.train.semi.config import Plan, SemiConfig, plan as make_plan
from noisyseg.train.semi.contrastive import U2PLContrast
from noisyseg.train.semi.distributed import Dist, gathered_batchnorm, setup
from noisyseg.train.semi.step import SemiStep
from noisyseg.train.semi.streams import Stream, WeakViews, load_batch, seed_for
from noisyseg.train.semi.teacher import ema_decay, ema_update
from noisyseg.train.semi.validate import Validator
from noisyseg.train.supervised import _resolved, per_image, split_ids

# on_step(epoch, step, steps_per_epoch, {term: value}) after every optimiser step (rank 0 only).
SemiStepHook = Callable[[int, int, int, dict], None]
CONTRAST_ALPHA = 0.2  # U2PL's share of unreliable pixels for the negatives (α_0, scheduled like the filter's)


def _same_run(saved: dict, config: dict) -> bool:
    keys = (set(saved) | set(config)) - {"device", "out"}
    return all(saved.get(k) == config.get(k) for k in keys)


def _strategy(kind: str, name: str | None, params: dict):
    if not name:
        return None
    from noisyseg.plugins import get_strategy

    return get_strategy(kind, name).build(params)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_semi(cfg: SemiConfig, force: bool = False, on_step: SemiStepHook | None = None,
               on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Trains ``cfg.method`` into ``cfg.out``; resumes from its checkpoint when the config is unchanged."""
    plan = make_plan(cfg)
    ds = Dataset(cfg.dataset)
    per_split = split_ids(ds, cfg.split)
    labelled_ids = [i for ids in per_split.values() for i in ids]
    unlabelled_ids: list[str] = []
    if plan.method != "supervised":
        unlabelled_ids = ds.ids(cfg.unlabelled)
        if not unlabelled_ids:
            raise NoisySegError(f"split '{cfg.unlabelled}' of {ds.root} lists no image")
        both = set(unlabelled_ids) & set(labelled_ids)
        if both:
            raise NoisySegError(f"image '{sorted(both)[0]}' is in both the labelled split(s) '{cfg.split}' and the "
                                f"unlabelled split '{cfg.unlabelled}' of {ds.root}")
    from noisyseg.plugins import get_model

    spec = get_model(cfg.model)
    model_params = spec.resolve(cfg.model_params)
    if cfg.normalisation == "model":
        cfg = replace(cfg, normalisation=spec.normalisation)
    if cfg.normalisation not in NORMALISATIONS:
        raise NoisySegError(f"normalisation must be model or one of {', '.join(NORMALISATIONS)}, got '{cfg.normalisation}'")
    if plan.sgc and plan.teacher != "self":
        raise NoisySegError("pseudoseg's SGC head runs on the student's own weak-view pass: expected --teacher self, "
                            f"found --teacher {plan.teacher}")
    pseudo = _strategy("pseudo-labeling", plan.pseudo_label, plan.pseudo_params)
    weighter = _strategy("weighting", plan.weighting, plan.weighting_params)
    device = select_device(cfg.device)
    dist = setup(device)
    config = asdict(cfg) | {"model_params": model_params, "num_classes": ds.num_classes, "classes": ds.classes,
                            "dataset": str(Path(cfg.dataset).resolve()), "labels": _resolved(cfg.labels),
                            "weights": _resolved(cfg.weights), "unlabelled_labels": _resolved(cfg.unlabelled_labels),
                            "unlabelled_weights": _resolved(cfg.unlabelled_weights), "plan": plan.to_json(),
                            "world_size": dist.world}
    config = json.loads(json.dumps(config))
    out = Path(cfg.out)
    config_path = out / "config.json"
    if out.exists() and has_files(out) and not force:
        saved = json.loads(config_path.read_text()) if config_path.is_file() else None
        if saved is None or not _same_run(saved, config):
            raise OutputExistsError(out, "a run with another configuration" if saved else "files not written by noisyseg train")
    dist.barrier()
    context = locked(out, "noisyseg train") if dist.rank == 0 else contextlib.nullcontext()
    with context:
        if dist.rank == 0:
            if force:
                for name in ("checkpoint.pt", "model.pt", "best.pt", "report.json"):
                    (out / name).unlink(missing_ok=True)
            write_json(config_path, config)
        dist.barrier()
        return _train(cfg, plan, ds, per_split, labelled_ids, unlabelled_ids, config, pseudo, weighter, dist,
                      on_step, on_epoch)


def _train(cfg: SemiConfig, plan: Plan, ds: Dataset, per_split: dict, labelled_ids: list[str],
           unlabelled_ids: list[str], config: dict, pseudo, weighter, dist: Dist, on_step, on_epoch) -> dict:
    out = Path(cfg.out)
    ckpt_path, model_path, best_path = out / "checkpoint.pt", out / "model.pt", out / "best.pt"
    device = dist.device
    torch.manual_seed(cfg.seed)
    student = build_model(config).to(device)
    if dist.active:
        gathered_batchnorm(student)
    teacher = copy.deepcopy(student) if plan.teacher == "ema" else None
    if teacher is not None:
        teacher.requires_grad_(False)

    sgc = None
    if plan.sgc:
        sgc = _build_sgc(student, ds, cfg.crop_size, device)
        if dist.active:
            gathered_batchnorm(sgc)
    contrast = None
    if plan.contrastive_weight > 0:
        contrast = U2PLContrast(ds.num_classes, student.feature_dim, device)

    from noisyseg.train.supervised import parameter_groups

    groups = parameter_groups(student, cfg.weight_decay, cfg.backbone_lr)
    if sgc is not None:
        groups.append({"params": list(sgc.parameters()), "weight_decay": cfg.weight_decay, "lr_scale": 1.0})
    base_lr = cfg.lr * (dist.world if cfg.lr_scaling == "linear" else 1)
    optimizer = torch.optim.SGD(groups, lr=base_lr, momentum=cfg.momentum)

    model, sgc_call = student, sgc
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        model = DDP(student, device_ids=ids)
        sgc_call = DDP(sgc, device_ids=ids) if sgc is not None else None

    labelled = SegmentationSamples(ds, labelled_ids, per_image(cfg.labels, per_split), per_image(cfg.weights, per_split),
                                   cfg.crop_size, (cfg.scale_min, cfg.scale_max), seed=cfg.seed,
                                   input_scale=cfg.input_scale, jitter=cfg.jitter, normalisation=cfg.normalisation)
    weak = None
    if unlabelled_ids:
        weak = WeakViews(ds, unlabelled_ids, cfg.unlabelled_labels, cfg.unlabelled_weights, cfg.crop_size,
                         (cfg.scale_min, cfg.scale_max), seed=cfg.seed, input_scale=cfg.input_scale,
                         has_labels=bool(cfg.unlabelled_labels))
    class_weights = None
    if cfg.class_balance == "median":
        counts = class_pixel_counts((labelled.load(i)[1] for i in labelled_ids), ds.num_classes)
        class_weights = median_frequency_weights(*counts).to(device)

    B_l = cfg.batch_size
    B_u = cfg.unlabelled_batch_size or cfg.batch_size
    A, W = cfg.accumulate, dist.world
    n = len(unlabelled_ids) if unlabelled_ids else len(labelled_ids)
    per_step = A * W * (B_u if unlabelled_ids else B_l)
    steps_per_epoch = max(1, n // per_step)
    if n < W * (B_u if unlabelled_ids else B_l):
        raise NoisySegError(f"{'unlabelled' if unlabelled_ids else 'labelled'} split(s) hold {n} images, fewer than "
                            f"one global batch ({W} process(es) x {B_u if unlabelled_ids else B_l})")
    total_steps = cfg.epochs * steps_per_epoch
    lab_stream = Stream("labelled", labelled_ids, cfg.seed, endless=True)
    unl_stream = Stream("unlabelled", unlabelled_ids, cfg.seed, endless=False) if unlabelled_ids else None
    step_fn = SemiStep(plan, model, student, teacher, pseudo, weighter, contrast, sgc_call, ds.num_classes,
                       cfg.normalisation, cfg.seed, dist, class_weights, labelled_weights=cfg.weights is not None,
                       tags=ds.tags, stream_labels=bool(cfg.unlabelled_labels))
    validator = None
    if cfg.val_split:
        val_ids = ds.ids(cfg.val_split)
        if not val_ids:
            raise NoisySegError(f"split '{cfg.val_split}' of {ds.root} lists no image")
        validator = Validator(ds, val_ids, cfg.input_scale, cfg.normalisation, device, dist)

    state = {"epoch": 0, "history": [], "terms": {}, "loss_per_step": [], "updates": 0, "val": {"student": [], "teacher": []},
             "best": None, "seconds": 0.0, "steps_run": 0}
    start_epoch = 0
    if ckpt_path.is_file():
        saved = load_checkpoint(ckpt_path, device)
        student.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if teacher is not None:
            teacher.load_state_dict(saved["teacher"])
        if sgc is not None:
            sgc.load_state_dict(saved["sgc"])
        if contrast is not None:
            contrast.load_state_dict(saved["bank"])
        for obj, key in ((pseudo, "pseudo_state"), (weighter, "weighting_state")):
            if obj is not None and hasattr(obj, "load_state_dict") and key in saved:
                obj.load_state_dict(saved[key])
        state = json.loads(saved["state"])
        start_epoch = state["epoch"]
    alpha0 = {id(s): getattr(s, "alpha") for s in (pseudo, weighter) if s is not None and hasattr(s, "alpha")}

    timer = Timer()
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(seed_for(cfg.seed, "torch", epoch, dist.rank))
        semi = bool(unlabelled_ids) and epoch >= plan.warmup_epochs
        if semi and teacher is not None and state["updates"] == 0:  # the warm-up's student, not the initial weights
            ema_update(teacher, student, 0.0, copy_buffers=True)
        if plan.alpha_schedule:
            for s in (pseudo, weighter):
                if s is not None and id(s) in alpha0:
                    s.alpha = alpha_schedule(alpha0[id(s)], epoch, cfg.epochs)
        alpha = alpha_schedule(CONTRAST_ALPHA, epoch, cfg.epochs) if plan.alpha_schedule else CONTRAST_ALPHA
        model.train()
        if sgc is not None:
            sgc.train()
        sums: dict[str, float] = {}
        start = time.perf_counter()
        with timer("train"):
            for step in range(steps_per_epoch):
                global_step = epoch * steps_per_epoch + step
                lr = poly_lr(base_lr, global_step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["lr_scale"]
                optimizer.zero_grad(set_to_none=True)
                logged: dict[str, torch.Tensor] = {}
                for micro in range(A):
                    k = global_step * A + micro
                    lab = load_batch(labelled, lab_stream, -1,
                                     range(k * W * B_l + dist.rank * B_l, k * W * B_l + (dist.rank + 1) * B_l))
                    unl, ids, positions = None, None, None
                    if semi:
                        base = (step * A + micro) * W * B_u
                        positions = list(range(base, base + W * B_u))
                        ids = [unlabelled_ids[unl_stream.index(epoch, p)] for p in positions]
                        unl = load_batch(weak, unl_stream, epoch, positions[dist.rank * B_u:(dist.rank + 1) * B_u])
                    sync = micro == A - 1
                    with _no_sync(model, sgc_call, not sync and dist.active):
                        loss, terms = step_fn(lab, unl, ids, positions, epoch, k, alpha)
                        (loss / A).backward()
                    for name, value in {"loss": loss, **terms}.items():
                        logged[name] = logged.get(name, 0.0) + value.detach() / A
                optimizer.step()
                if semi and teacher is not None:
                    ema_update(teacher, student, ema_decay(state["updates"], plan.ema_decay),
                               copy_buffers=state["updates"] == 0)
                    state["updates"] += 1
                names = sorted(logged)
                values = (dist.sum(torch.stack([torch.as_tensor(logged[k_], device=device, dtype=torch.float32)
                                                for k_ in names])) / dist.world).tolist()
                step_terms = dict(zip(names, values))
                state["loss_per_step"].append(step_terms["loss"])
                for name, value in step_terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                if on_step and dist.rank == 0:
                    on_step(epoch, step, steps_per_epoch, step_terms)
        state["seconds"] += time.perf_counter() - start
        state["steps_run"] += steps_per_epoch
        done = len(state["history"])
        state["history"].append(sums["loss"] / steps_per_epoch)
        for name in sorted(set(state["terms"]) | set(sums) - {"loss"}):
            values = state["terms"].setdefault(name, [None] * done)
            values.append(sums[name] / steps_per_epoch if name in sums else None)
        if validator is not None:
            with timer("validate"):
                scores = {"student": validator.miou(student)}
                if teacher is not None and state["updates"] > 0:
                    scores["teacher"] = validator.miou(teacher)
            for who in ("student", "teacher"):
                state["val"][who].append(scores.get(who))
            who = max(scores, key=lambda w: scores[w] if scores[w] == scores[w] else -1.0)
            best = state["best"]
            if best is None or scores[who] > best["miou"]:
                state["best"] = {"epoch": epoch + 1, "which": who, "miou": scores[who]}
                if dist.rank == 0:
                    save_checkpoint(best_path, {"model": (student if who == "student" else teacher).state_dict()})
        state["epoch"] = epoch + 1
        state["peak_memory_mb"] = max(state.get("peak_memory_mb", 0.0), _peak_memory_mb(device))
        if dist.rank == 0:
            save_checkpoint(ckpt_path, _checkpoint(student, teacher, optimizer, sgc, contrast, pseudo, weighter, state))
        dist.barrier()
        if on_epoch and dist.rank == 0:
            on_epoch(epoch, {"loss": state["history"][-1],
                             **{k_: v[-1] for k_, v in state["terms"].items() if v[-1] is not None},
                             **{f"val_{w}": s[-1] for w, s in state["val"].items() if s and s[-1] is not None}})

    predict_with = "student"
    if state["best"] is not None:
        predict_with = state["best"]["which"]
        final = load_checkpoint(best_path, device)["model"] if best_path.is_file() else None
    else:
        if teacher is not None and state["updates"] > 0:
            predict_with = "teacher"
        final = (teacher if predict_with == "teacher" else student).state_dict()
    report = {"command": "train", "method": plan.method, "config": config, "plan": plan.to_json(),
              "epochs": cfg.epochs, "resumed_from_epoch": start_epoch, "steps_per_epoch": steps_per_epoch,
              "loss_per_epoch": state["history"], "terms_per_epoch": state["terms"],
              "loss_per_step": state["loss_per_step"], "val_miou": state["val"] if validator else None,
              "best": state["best"], "predict_with": predict_with, "ema_updates": state["updates"],
              "seconds_per_step": state["seconds"] / max(1, state["steps_run"]), "timings": timer.seconds,
              "peak_memory_mb": max(state.get("peak_memory_mb", 0.0), _peak_memory_mb(device)), "world_size": dist.world,
              "global_batch": {"labelled": W * B_l * A, "unlabelled": W * B_u * A if unlabelled_ids else 0},
              "lr": base_lr,
              "device": str(device), "versions": environment()}
    if dist.rank == 0:
        save_checkpoint(model_path, {"model": final})
        write_json(out / "report.json", report)
    dist.barrier()
    return report


def _checkpoint(student, teacher, optimizer, sgc, contrast, pseudo, weighter, state) -> dict:
    ckpt = {"model": student.state_dict(), "optimizer": optimizer.state_dict(), "state": json.dumps(state)}
    if teacher is not None:
        ckpt["teacher"] = teacher.state_dict()
    if sgc is not None:
        ckpt["sgc"] = sgc.state_dict()
    if contrast is not None:
        ckpt["bank"] = contrast.state_dict()
    for obj, key in ((pseudo, "pseudo_state"), (weighter, "weighting_state")):
        if obj is not None and hasattr(obj, "state_dict"):
            ckpt[key] = obj.state_dict()
    return ckpt


@contextlib.contextmanager
def _no_sync(model, sgc, skip: bool):
    """DDP's ``no_sync`` on the student (and SGC) for the micro-batches before the last one."""
    with contextlib.ExitStack() as stack:
        if skip:
            for m in (model, sgc):
                if m is not None and hasattr(m, "no_sync"):
                    stack.enter_context(m.no_sync())
        yield


def _build_sgc(student: torch.nn.Module, ds: Dataset, crop: int, device: torch.device) -> torch.nn.Module:
    """PseudoSeg's SGC head over the hypercolumn [stage4, decoder features] of ``student``."""
    from noisyseg.models.sgc import SelfAttentionGradCAM

    if not hasattr(student, "class_head"):
        raise NoisySegError("pseudoseg needs a model with an image classifier ('class_head', 'class_logits' and "
                            "'stage4' outputs), e.g. efficientnet-lite0 or deeplabv3plus")
    was = student.training
    student.eval()
    with torch.no_grad():
        probe = student(torch.zeros(1, 3, crop, crop, device=device))
    student.train(was)
    if "stage4" not in probe or "class_logits" not in probe:
        raise NoisySegError(f"pseudoseg needs the model's 'stage4' and 'class_logits' outputs, found {sorted(probe)}")
    channels = probe["stage4"].shape[1] + probe["features"].shape[1]
    background = 0 if ds.classes[0].lower() in ("background", "bg") else None
    return SelfAttentionGradCAM(channels, ds.num_classes, embed_dim=64, background=background).to(device)
