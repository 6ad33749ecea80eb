"""``noisyseg weight``: per-pixel loss weights from model outputs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("weight")
    def weight_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: str = typer.Option(..., "--split", help="Split to weight."),
        probs: Path = typer.Option(..., "--probs", help="Probs dir (from 'noisyseg predict')."),
        strategy: str = typer.Option(..., "--strategy", help="Weighting strategy (see 'noisyseg plugins')."),
        out: Path = typer.Option(..., "--out", help="Weights dir to write (<id>.png = weight x 255)."),
        labels: Optional[Path] = typer.Option(None, "--labels", help="Label dir the weights go with (URN takes its classes)."),
        param: List[str] = typer.Option([], "-p", "--param", help="Strategy parameter key=value (repeatable)."),
        as_float: bool = typer.Option(False, "--float", help="Also write <id>.npy float16 weights (keeps values above 1)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per batch."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Overwrite instead of resuming."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Write per-pixel loss weights (for 'noisyseg train --weights'). With --labels and ground truth,
        report how well low weights pick out wrong labels."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.weight import weight
        from noisyseg.params import parse_assignments

        report = weight(dataset, split, probs, strategy, out, params=parse_assignments(param), labels=labels,
                        as_float=as_float, device=device, batch_size=batch_size, force=force, track=ui.track)
        if as_json:
            ui.print_json(report)
            return
        ui.out.print(ui.table(f"weight {split} ({strategy}) -> {out}",
                              ["images", "skipped", "mean weight", "min", "max", "seconds"],
                              [[report["images"], report["skipped"], report["mean_weight"], report["min_weight"],
                                report["max_weight"], report["timings"].get("weight", 0.0)]]))
        if "as_noise_detector" in report:
            q = report["as_noise_detector"]
            ui.out.print(ui.table("weights vs wrong labels", ["mean w (right)", "mean w (wrong)", "AUROC", "noise rate"],
                                  [[report["mean_weight_clean_labels"], report["mean_weight_wrong_labels"],
                                    q.get("auroc", float("nan")), q["noise_rate"]]]))
        if "warning" in report:
            ui.err.print(f"[yellow]warning:[/] {report['warning']}")
