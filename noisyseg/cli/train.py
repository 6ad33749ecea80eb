"""``noisyseg train``: train a segmentation model on ground truth or noisy labels, with weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from noisyseg.errors import ParameterError

SEMI = "Semi-supervised (--unlabelled)"


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: List[str] = typer.Option(..., "--split",
                                        help="Split to train on; repeat to train on several together (e.g. --split val "
                                             "--split train: exact masks and cleaned labels in one model)."),
        out: Path = typer.Option(..., "--out", help="Run directory (config.json, checkpoint.pt, model.pt, report.json)."),
        labels: List[str] = typer.Option([], "--labels",
                                         help="Label dir to learn from: DIR for every split, or SPLIT=DIR for one "
                                              "(repeatable); splits without one use the dataset's masks."),
        weights: List[str] = typer.Option([], "--weights",
                                          help="Weights dir of per-pixel loss weights: DIR or SPLIT=DIR like --labels; "
                                               "splits without one weigh every pixel 1."),
        epochs: int = typer.Option(30, "--epochs", min=1, help="Epochs."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per step."),
        lr: float = typer.Option(0.02, "--lr", min=0.0, help="Initial learning rate of the head (poly decay)."),
        crop_size: int = typer.Option(320, "--crop-size", min=16, help="Square training crop, after random scaling."),
        scale_range: str = typer.Option("0.5,1.5", "--scale-range", help="Random rescaling range LO,HI applied before cropping."),
        input_scale: float = typer.Option(1.0, "--input-scale", min=0.05, max=4.0,
                                          help="Resize every image by this factor first; predict uses the same (0.5 trains ~4x faster)."),
        jitter: float = typer.Option(0.4, "--jitter", min=0.0, max=0.9,
                                     help="Colour jitter strength: brightness, contrast, saturation, gamma factors in [1-j, 1+j]."),
        normalisation: str = typer.Option("model", "--normalisation",
                                          help="Input normalisation: model (what the model's weights expect: tf for "
                                               "EfficientNet-Lite, imagenet for deeplabv3plus), imagenet (fixed mean/std), "
                                               "tf (2x - 1) or image (each image's own channel mean/std)."),
        backbone_lr: float = typer.Option(0.5, "--backbone-lr", min=0.0,
                                          help="Learning-rate multiplier of the model's pretrained backbone (the head "
                                               "learns at --lr, the backbone at --lr x this)."),
        class_balance: str = typer.Option("median", "--class-balance",
                                          help="none, or median: weigh each class's pixels by median frequency / its "
                                               "frequency (Eigen & Fergus), so thin rare classes are not drowned out."),
        folds: int = typer.Option(1, "--folds", min=1, max=20,
                                  help="K > 1: train K models, each without one contiguous block of the split, into "
                                       "OUT/fold0..fold{K-1}; 'noisyseg predict OUT' then gives held-out images out-of-fold "
                                       "probabilities (honest for calibration) and other images the folds' mean."),
        fold_order: str = typer.Option("contiguous", "--fold-order",
                                       help="With --folds: contiguous (each fold leaves out a block of the split "
                                            "and so its frames' neighbours: the honest estimate for unseen scenes) or "
                                            "interleaved (every K-th image: out-of-fold probabilities like those of "
                                            "frames drawn between the training frames, e.g. CamVid's weak split)."),
        full: bool = typer.Option(False, "--full",
                                  help="With --folds: also train OUT/full on every image; predict then gives images "
                                       "no fold held out the full model's prediction instead of the folds' mean "
                                       "(a model fitted on all the masks: better, at one more training)."),
        model: str = typer.Option("efficientnet-lite0", "--model",
                                  help="Model name (see 'noisyseg plugins'): efficientnet-lite0/1/2 (ImageNet-pretrained) "
                                       "or deeplabv3plus (from scratch)."),
        model_param: List[str] = typer.Option([], "-p", "--param", help="Model parameter key=value (repeatable)."),
        seed: int = typer.Option(0, "--seed", help="Seed."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Start over even if the run directory holds another run."),
        unlabelled: Optional[str] = typer.Option(None, "--unlabelled", rich_help_panel=SEMI,
                                                 help="Split of unlabelled (or noisily labelled) images: trains "
                                                      "semi-supervised with --method."),
        method: Optional[str] = typer.Option(None, "--method", rich_help_panel=SEMI,
                                             help="fixmatch (default with --unlabelled), unimatch, u2pl, pseudoseg, "
                                                  "mean-teacher, or supervised (the semi loop without the "
                                                  "unlabelled stream: torchrun, --val-split, --accumulate)."),
        unlabelled_labels: Optional[Path] = typer.Option(None, "--unlabelled-labels", rich_help_panel=SEMI,
                                                         help="Label dir of the unlabelled split (noisy, cleaned, "
                                                              "corrected or pseudo-masks): adds their cross-entropy."),
        unlabelled_weights: Optional[Path] = typer.Option(None, "--unlabelled-weights", rich_help_panel=SEMI,
                                                          help="Weights dir for --unlabelled-labels (e.g. urn)."),
        unlabelled_batch_size: Optional[int] = typer.Option(None, "--unlabelled-batch-size", min=1,
                                                            rich_help_panel=SEMI,
                                                            help="Unlabelled images per step and process "
                                                                 "(default --batch-size)."),
        pseudo_label: Optional[str] = typer.Option(None, "--pseudo-label", rich_help_panel=SEMI,
                                                   help="Pseudo-labeling strategy called online on the teacher's "
                                                        "predictions (any registered one; see 'noisyseg plugins')."),
        pseudo_param: List[str] = typer.Option([], "--pseudo-param", rich_help_panel=SEMI,
                                               help="Parameter key=value of the pseudo-labeling strategy (repeatable)."),
        weighting: Optional[str] = typer.Option(None, "--weighting", rich_help_panel=SEMI,
                                                help="Weighting strategy for the pseudo-labels, or none."),
        weighting_param: List[str] = typer.Option([], "--weighting-param", rich_help_panel=SEMI,
                                                  help="Parameter key=value of the weighting strategy (repeatable)."),
        teacher: Optional[str] = typer.Option(None, "--teacher", rich_help_panel=SEMI,
                                              help="self (the model's own detached prediction) or ema (a mean teacher)."),
        threshold: Optional[float] = typer.Option(None, "--threshold", rich_help_panel=SEMI,
                                                  help="Confidence threshold of the pseudo-labels (low-confidence "
                                                       "pixels stay in the loss's denominator); 0 counts every pixel, "
                                                       "which wants --warmup-epochs first."),
        strong_aug: Optional[str] = typer.Option(None, "--strong-aug", rich_help_panel=SEMI,
                                                 help="Ops of the strong view: comma list of colour, grey, blur, "
                                                      "cutmix, cutout, or none."),
        unsup_loss: Optional[str] = typer.Option(None, "--unsup-loss", rich_help_panel=SEMI,
                                                 help="Loss on the pseudo-labels: ce, sce (symmetric) or soft-ce."),
        ema_decay: Optional[float] = typer.Option(None, "--ema-decay", rich_help_panel=SEMI,
                                                  help="Largest EMA decay of the teacher (0.99)."),
        warmup_epochs: Optional[int] = typer.Option(None, "--warmup-epochs", min=0, rich_help_panel=SEMI,
                                                    help="Supervised-only epochs first (u2pl: 1): a model that "
                                                         "already segments makes the first pseudo-labels."),
        alpha_schedule: Optional[bool] = typer.Option(None, "--alpha-schedule/--fixed-alpha", rich_help_panel=SEMI,
                                                      help="U2PL's schedule of the share of pixels the pseudo-label "
                                                           "and weighting strategies drop: alpha (1 - epoch / epochs) "
                                                           "(u2pl's preset), or their alpha throughout."),
        contrastive_weight: Optional[float] = typer.Option(None, "--contrastive-weight", min=0.0,
                                                           rich_help_panel=SEMI,
                                                           help="Weight of U2PL's contrastive term (u2pl: 0.1)."),
        val_split: Optional[str] = typer.Option(None, "--val-split", rich_help_panel=SEMI,
                                                help="Split with masks scored after every epoch (student and "
                                                     "teacher mIoU); model.pt keeps the best."),
        accumulate: int = typer.Option(1, "--accumulate", min=1, rich_help_panel=SEMI,
                                       help="Micro-batches per optimiser step (gradient accumulation)."),
        lr_scaling: str = typer.Option("none", "--lr-scaling", rich_help_panel=SEMI,
                                       help="none, or linear: --lr is for one process's batch and is multiplied by "
                                            "the number of processes (torchrun)."),
    ):
        """Train with cross-entropy (ignore 255, optional per-pixel weights), SGD and a poly schedule.
        Rerunning the same command resumes from the last finished epoch.

        With --unlabelled, train semi-supervised (--method fixmatch, unimatch, u2pl, pseudoseg,
        mean-teacher); under `torchrun --nproc_per_node N -m noisyseg train ...` on N processes."""
        from noisyseg.cli import ui
        from noisyseg.params import parse_assignments

        from noisyseg.pipeline.train import train_config
        from noisyseg.train.semi import SemiConfig

        scale_min, scale_max = _scale_range(scale_range)
        semi_options = {"unlabelled": unlabelled, "method": method,
                        "unlabelled_labels": str(unlabelled_labels) if unlabelled_labels else None,
                        "unlabelled_weights": str(unlabelled_weights) if unlabelled_weights else None,
                        "unlabelled_batch_size": unlabelled_batch_size, "pseudo_label": pseudo_label,
                        "pseudo_params": parse_assignments(pseudo_param), "weighting": weighting,
                        "weighting_params": parse_assignments(weighting_param), "teacher": teacher,
                        "threshold": threshold, "strong_aug": strong_aug, "unsup_loss": unsup_loss,
                        "ema_decay": ema_decay, "warmup_epochs": warmup_epochs, "alpha_schedule": alpha_schedule,
                        "contrastive_weight": contrastive_weight, "val_split": val_split, "accumulate": accumulate,
                        "lr_scaling": lr_scaling}
        cfg = train_config(str(dataset), list(split), str(out), labels=_per_split(labels, split, "--labels"),
                           weights=_per_split(weights, split, "--weights"), device=device,
                           name=lambda key: "--" + key.replace("_", "-"), model=model,
                           model_params=parse_assignments(model_param), epochs=epochs, batch_size=batch_size, lr=lr,
                           crop_size=crop_size, scale_min=scale_min, scale_max=scale_max, input_scale=input_scale,
                           jitter=jitter, normalisation=normalisation, backbone_lr=backbone_lr,
                           class_balance=class_balance, folds=folds, fold_order=fold_order, full=full, seed=seed,
                           **{k: v for k, v in semi_options.items() if v is not None and v != {}})
        if isinstance(cfg, SemiConfig):
            _semi_with_progress(cfg, force)
            return
        reports = _train_with_progress(cfg, force)
        rows = []
        for k, report in enumerate(reports):
            losses = report["loss_per_epoch"]
            rows.append(([f"fold{k}" if k < folds else "full"] if folds > 1 else []) +
                        [report["epochs"], losses[0] if losses else float("nan"), losses[-1] if losses else float("nan"),
                         report["timings"].get("train", 0.0), report["device"]])
        ui.out.print(ui.table(f"train {cfg.split} -> {out}", (["fold"] if folds > 1 else []) +
                              ["epochs", "first loss", "last loss", "seconds", "device"], rows))


def _per_split(entries: list[str], splits: list[str], option: str) -> str | dict | None:
    """``--labels``/``--weights`` entries -> one dir (str), {split: dir or None}, or None.

    An entry is ``DIR`` (every split without its own entry) or ``SPLIT=DIR`` with SPLIT among
    ``splits``; a path that itself contains '=' is taken whole unless its prefix names a split."""
    default, own = None, {}
    for entry in entries:
        name, sep, path = entry.partition("=")
        if sep and name not in splits and not Path(entry).exists():
            raise ParameterError(f"{option}: expected SPLIT=DIR with SPLIT one of {', '.join(splits)} (the --split "
                                 f"names), found '{name}'")
        if sep and name in splits:
            if name in own:
                raise ParameterError(f"{option}: expected one dir for split '{name}', found two")
            own[name] = path
        elif default is None:
            default = entry
        else:
            raise ParameterError(f"{option}: expected one DIR for every split (or SPLIT=DIR with SPLIT one of "
                                 f"{', '.join(splits)}), found '{default}' and '{entry}'")
    if not own:
        return default
    return {name: own.get(name, default) for name in splits}


def _scale_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise ParameterError(f"--scale-range: expected LO,HI (two numbers), found '{text}'") from None
    if not 0 < lo <= hi:
        raise ParameterError(f"--scale-range: expected 0 < LO <= HI, found '{text}'")
    return lo, hi


def _train_with_progress(cfg, force: bool) -> list[dict]:
    from rich.progress import TextColumn

    from noisyseg.cli import ui
    from noisyseg.train.supervised import train, train_folds

    with ui.progress(TextColumn("loss {task.fields[loss]}")) as progress:
        task = progress.add_task("train", total=None, loss="-")
        prefix = [""]

        def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
            progress.update(task, total=cfg.epochs * steps, completed=epoch * steps + step + 1,
                            description=f"{prefix[0]}train epoch {epoch + 1}/{cfg.epochs}", loss=f"{loss:.3f}")

        if cfg.folds > 1:
            def on_fold(k: int) -> None:
                prefix[0] = f"fold {k + 1}/{cfg.folds} " if k < cfg.folds else "full "

            return train_folds(cfg, force=force, on_step=on_step, on_fold=on_fold)
        return [train(cfg, force=force, on_step=on_step)]


def _semi_with_progress(cfg, force: bool) -> None:
    """Runs the semi-supervised loop with a progress bar showing every stream's loss (rank 0 only)
    and prints its summary table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from noisyseg.cli import ui
    from noisyseg.train.semi import train_semi

    if int(os.environ.get("RANK", "0")) != 0:
        train_semi(cfg, force=force)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[terms]}"))
    with Progress(*columns, console=ui.err) as progress:
        task = progress.add_task(f"{cfg.method}", total=None, terms="")

        def on_step(epoch: int, step: int, steps: int, terms: dict) -> None:
            shown = " ".join(f"{k} {v:.3f}" for k, v in terms.items() if k != "loss")
            progress.update(task, total=cfg.epochs * steps, completed=epoch * steps + step + 1,
                            description=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}",
                            terms=f"loss {terms['loss']:.3f}  {shown}")

        def on_epoch(epoch: int, summary: dict) -> None:
            val = "  ".join(f"{k[4:]} mIoU {v:.4f}" for k, v in summary.items() if k.startswith("val_"))
            if val:
                progress.console.print(f"epoch {epoch + 1}: {val}")

        report = train_semi(cfg, force=force, on_step=on_step, on_epoch=on_epoch)
    losses = report["loss_per_epoch"]
    best = report["best"] or {}
    ui.out.print(ui.table(f"train {cfg.method} {cfg.split} + {cfg.unlabelled or '-'} -> {cfg.out}",
                          ["epochs", "first loss", "last loss", "best val mIoU", "model.pt", "s/step", "processes",
                           "device"],
                          [[report["epochs"], losses[0] if losses else float("nan"),
                            losses[-1] if losses else float("nan"), best.get("miou", float("nan")),
                            report["predict_with"] + (f" (epoch {best['epoch']})" if best else ""),
                            report["seconds_per_step"], report["world_size"], report["device"]]]))
