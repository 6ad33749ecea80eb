"""``noisyseg report``: a self-contained HTML label-quality report of one split."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: str = typer.Option(..., "--split", help="Split to report on."),
        labels: Path = typer.Option(..., "--labels", help="Label dir to judge (e.g. the noisy labels)."),
        probs: Path = typer.Option(..., "--probs", help="Probs dir of a model for the split (from 'noisyseg predict')."),
        out: Path = typer.Option(..., "--out", help="Report directory to write (index.html, PNGs, CSV, JSON)."),
        cleaned: Optional[Path] = typer.Option(None, "--cleaned", help="detect's output for these labels (flagged "
                                               "pixels are 255); without it, pixels are flagged by cleanlab's rule."),
        scores: Optional[Path] = typer.Option(None, "--scores", help="detect's scores/ dir (noise score per pixel; "
                                              "default 1 - own-label probability)."),
        corrected: Optional[Path] = typer.Option(None, "--corrected", help="Corrected label dir, shown in the gallery."),
        worst: int = typer.Option(12, "--worst", min=0, help="Lowest-scoring images in the gallery."),
        batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per batch (small batches stay in cache)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Overwrite a report made with other inputs."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Write a label-quality report: summary, per-image scores (cleanlab's softmin), a gallery of the
        worst images with flagged pixels over the photo, common confusions, per-class table and plots.
        Open OUT/index.html in a browser; it needs no network."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.report import report

        result = report(dataset, split, labels, probs, out, cleaned=cleaned, scores=scores, corrected=corrected,
                        worst=worst, batch_size=batch_size, device=device, force=force, track=ui.track)
        if as_json:
            ui.print_json(result)
            return
        ui.out.print(ui.table(f"report {split} -> {out}/index.html",
                              ["images", "pixels", "flagged share", "flags from", "ECE", "seconds"],
                              [[result["images"], result["pixels"], result["flagged_share"], result["flags_from"],
                                result["calibration"]["ece"], sum(result["timings"].values())]]))
        if "detection_quality" in result:
            q = result["detection_quality"]
            ui.out.print(ui.table("flagged pixels vs true noise", ["precision", "recall", "F1", "AUROC", "noise rate"],
                                  [[q["precision"], q["recall"], q["f1"], q.get("auroc", float("nan")), q["noise_rate"]]]))
            ui.out.print(ui.table("label quality vs ground truth", ["labels", "mIoU", "precision", "coverage"],
                                  [[n, v["miou"], v["precision"], v["coverage"]] for n, v in result["label_quality"].items()]))
        worst_rows = result["worst_images"][:5]
        if worst_rows:
            ui.out.print(ui.table("lowest-scoring images", ["id", "score", "flagged share"],
                                  [[r["id"], r["score"], r["flagged_share"]] for r in worst_rows]))
        if "skipped" in result["plots"]:
            ui.err.print(f"[yellow]warning:[/] plots skipped: {ui.escape(result['plots']['skipped'])}")
