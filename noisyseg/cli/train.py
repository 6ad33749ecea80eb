"""``noisyseg train``: train a segmentation model on ground truth or noisy labels, with weights."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from noisyseg.errors import ParameterError


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
        crop_size: int = typer.Option(256, "--crop-size", min=16, help="Square training crop, after random scaling."),
        scale_range: str = typer.Option("0.75,1.25", "--scale-range", help="Random rescaling range LO,HI applied before cropping."),
        input_scale: float = typer.Option(1.0, "--input-scale", min=0.05, max=4.0,
                                          help="Resize every image by this factor first; predict uses the same (0.5 trains ~4x faster)."),
        jitter: float = typer.Option(0.0, "--jitter", min=0.0, max=0.9,
                                     help="Colour jitter strength: brightness, contrast, saturation, gamma factors in [1-j, 1+j]."),
        normalisation: str = typer.Option("model", "--normalisation",
                                          help="Input normalisation: model (what the model's weights expect: tf for "
                                               "EfficientNet-Lite, imagenet for deeplabv3plus), imagenet (fixed mean/std), "
                                               "tf (2x - 1) or image (each image's own channel mean/std)."),
        backbone_lr: float = typer.Option(0.5, "--backbone-lr", min=0.0,
                                          help="Learning-rate multiplier of the model's pretrained backbone (the head "
                                               "learns at --lr, the backbone at --lr x this)."),
        class_balance: str = typer.Option("none", "--class-balance",
                                          help="none, or median: weigh each class's pixels by median frequency / its "
                                               "frequency (Eigen & Fergus), so thin rare classes are not drowned out."),
        folds: int = typer.Option(1, "--folds", min=1, max=20,
                                  help="K > 1: train K models, each without one contiguous block of the split, into "
                                       "OUT/fold0..fold{K-1}; 'noisyseg predict OUT' then gives held-out images out-of-fold "
                                       "probabilities (honest for calibration) and other images the folds' mean."),
        model: str = typer.Option("efficientnet-lite0", "--model",
                                  help="Model name (see 'noisyseg plugins'): efficientnet-lite0/1/2 (ImageNet-pretrained) "
                                       "or deeplabv3plus (from scratch)."),
        model_param: List[str] = typer.Option([], "-p", "--param", help="Model parameter key=value (repeatable)."),
        seed: int = typer.Option(0, "--seed", help="Seed."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Start over even if the run directory holds another run."),
    ):
        """Train with cross-entropy (ignore 255, optional per-pixel weights), SGD and a poly schedule.
        Rerunning the same command resumes from the last finished epoch."""
        from noisyseg.cli import ui
        from noisyseg.strategies.spec import parse_assignments
        from noisyseg.train.data import NORMALISATIONS
        from noisyseg.train.supervised import CLASS_BALANCES, TrainConfig

        scale_min, scale_max = _scale_range(scale_range)
        if normalisation not in ("model", *NORMALISATIONS):
            raise ParameterError(f"--normalisation: expected model, {', '.join(NORMALISATIONS)}, found '{normalisation}'")
        if class_balance not in CLASS_BALANCES:
            raise ParameterError(f"--class-balance: expected {' or '.join(CLASS_BALANCES)}, found '{class_balance}'")
        if len(set(split)) != len(split) or any(not name or "+" in name for name in split):
            raise ParameterError(f"--split: expected distinct split names without '+', found {', '.join(split)}")
        cfg = TrainConfig(dataset=str(dataset), split="+".join(split), out=str(out),
                          labels=_per_split(labels, split, "--labels"), weights=_per_split(weights, split, "--weights"),
                          model=model,
                          model_params=parse_assignments(model_param), epochs=epochs, batch_size=batch_size, lr=lr,
                          crop_size=crop_size, scale_min=scale_min, scale_max=scale_max, input_scale=input_scale,
                          jitter=jitter, normalisation=normalisation, backbone_lr=backbone_lr, class_balance=class_balance, folds=folds, seed=seed, device=device)
        reports = _train_with_progress(cfg, force)
        rows = []
        for k, report in enumerate(reports):
            losses = report["loss_per_epoch"]
            rows.append(([f"fold{k}"] if folds > 1 else []) +
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
                prefix[0] = f"fold {k + 1}/{cfg.folds} "

            return train_folds(cfg, force=force, on_step=on_step, on_fold=on_fold)
        return [train(cfg, force=force, on_step=on_step)]
