"""``noisyseg predict``: probabilities and features of a trained run."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_cmd(
        run: Path = typer.Argument(..., help="Run directory made by 'noisyseg train'."),
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: str = typer.Option(..., "--split", help="Split to predict."),
        out: Path = typer.Option(..., "--out", help="Output directory (probs/ and features/ inside)."),
        features: bool = typer.Option(False, "--features", help="Also write features/<id>.npy float16 (D, h, w)."),
        cams: bool = typer.Option(False, "--cams", help="Also write cams/<id>.npy float16 (C, h, w) CAMs."),
        logits: bool = typer.Option(False, "--logits", help="Also write logits/<id>.npy float16 (C, H, W)."),
        flip: bool = typer.Option(False, "--flip", help="Average each image's probs with its mirror image's "
                                                        "(test-time augmentation; twice the time)."),
        scales: str = typer.Option("1", "--scales", help="Comma list of test-time scales whose probs are averaged "
                                                         "(e.g. 0.75,1,1.25; relative to the run's --input-scale)."),
        batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per forward pass."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Recompute images already written."),
    ):
        """Write DIR/probs/<id>.npy (float16 (C, H, W) at image size) and, with --features,
        DIR/features/<id>.npy. Rerunning skips finished images."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.predict import predict

        report = predict(run, dataset, split, out, features=features, device=device, batch_size=batch_size,
                         force=force, track=ui.track, cams=cams, logits=logits, flip=flip,
                         scales=_scales(scales))
        ui.out.print(ui.table(f"predict {split} -> {out}", ["images", "skipped", "feature dim", "stride", "seconds"],
                              [[report["images"], report["skipped"], report["feature_dim"], report["feature_stride"],
                                report["timings"].get("predict", 0.0)]]))


def _scales(text: str) -> tuple[float, ...]:
    from noisyseg.errors import ParameterError

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise ParameterError(f"--scales: expected a comma list of positive numbers such as 0.75,1,1.25, found {text!r}")
    return values
