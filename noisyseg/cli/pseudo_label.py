"""``noisyseg pseudo-label``: hard (and soft) pseudo-labels from model outputs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("pseudo-label")
    def pseudo_label_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: str = typer.Option(..., "--split", help="Split to label."),
        probs: Path = typer.Option(..., "--probs", help="Probs dir (from 'noisyseg predict')."),
        strategy: str = typer.Option(..., "--strategy", help="Pseudo-labeling strategy (see 'noisyseg plugins')."),
        out: Path = typer.Option(..., "--out", help="Label dir to write (255 = ignore)."),
        cams: Optional[Path] = typer.Option(None, "--cams", help="CAM dir (from 'noisyseg predict --cams')."),
        logits: Optional[Path] = typer.Option(None, "--logits", help="Logits dir (from 'noisyseg predict --logits')."),
        features: Optional[Path] = typer.Option(None, "--features", help="Features dir (prototype-denoised)."),
        param: List[str] = typer.Option([], "-p", "--param", help="Strategy parameter key=value (repeatable)."),
        soft: bool = typer.Option(False, "--soft", help="Also write <id>.npy float16 (C, H, W) soft labels."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per batch."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Overwrite instead of resuming."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Make pseudo-labels from probs (and CAMs, logits, features) with a pseudo-labeling strategy.
        With ground truth present, report their mIoU, precision, coverage and ECE."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.pseudo_label import pseudo_label
        from noisyseg.params import parse_assignments

        report = pseudo_label(dataset, split, probs, strategy, out, params=parse_assignments(param), cams=cams,
                              logits=logits, features=features, soft=soft, device=device, batch_size=batch_size,
                              force=force, track=ui.track)
        if as_json:
            ui.print_json(report)
            return
        ui.out.print(ui.table(f"pseudo-label {split} ({strategy}) -> {out}", ["images", "skipped", "kept share", "seconds"],
                              [[report["images"], report["skipped"], report["kept_share"],
                                report["timings"].get("pseudo-label", 0.0)]]))
        if "label_quality" in report:
            q = report["label_quality"]
            ui.out.print(ui.table("pseudo-labels vs ground truth", ["mIoU", "precision", "coverage", "ECE"],
                                  [[q["miou"], q["precision"], q["coverage"], report.get("ece", float("nan"))]]))
