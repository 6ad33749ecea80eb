"""``noisyseg evaluate``: label (or prediction) quality against ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory with ground-truth masks."),
        labels: Optional[Path] = typer.Option(None, "--labels", help="Label dir to evaluate."),
        probs: Optional[Path] = typer.Option(None, "--probs", help="Probs dir to evaluate (argmax mIoU and ECE)."),
        split: Optional[str] = typer.Option(None, "--split", help="Only this split (default: every image in the dir)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (miou, pixel_accuracy, coverage, precision, per_class_iou)."),
    ):
        """Score a label dir against ground truth: mIoU, pixel accuracy, coverage (share of GT pixels
        labelled), precision (share of labelled pixels that are right), per-class IoU; and ECE for probs."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.evaluate import evaluate

        report = evaluate(dataset, labels, split, probs, track=ui.track)
        if as_json:
            ui.print_json(report)
            return
        rows = ui.quality_rows(report, [("labels", str(labels)), ("probs", f"{probs} (argmax)")])
        ui.out.print(ui.table(f"evaluate ({report['images']} images)", ["source", "mIoU", "precision", "coverage"], rows))
        for key in ("labels", "probs"):
            if key in report:
                per_class = report[key]["per_class_iou"]
                ui.out.print(ui.table(f"per-class IoU ({key})", ["class", "IoU"],
                                      [[c, float("nan") if v is None else v] for c, v in per_class.items()]))
        if "probs" in report:
            ui.out.print(f"ECE of probs: {report['probs']['ece']:.4f}")
