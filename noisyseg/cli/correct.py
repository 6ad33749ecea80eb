"""``noisyseg correct``: fill the untrusted pixels (255) of a label dir with a correction strategy."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("correct")
    def correct_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: str = typer.Option(..., "--split", help="Split to correct."),
        labels: Path = typer.Option(..., "--labels", help="Label dir with holes (255), e.g. 'noisyseg detect' output."),
        features: Optional[Path] = typer.Option(None, "--features", help="Features dir (from 'noisyseg predict --features')."),
        probs: Optional[Path] = typer.Option(None, "--probs", help="Probs dir (from 'noisyseg predict')."),
        strategy: str = typer.Option(..., "--strategy", help="Correction strategy (see 'noisyseg plugins')."),
        param: List[str] = typer.Option([], "-p", "--param", help="Strategy parameter key=value (repeatable)."),
        crf: bool = typer.Option(False, "--crf", help="Refine the strategy's output with a dense CRF."),
        fit_split: Optional[str] = typer.Option(None, "--fit-split", help="A split with exact masks that a learning "
                                                "strategy (gat/gcn -p supervised=true) trains on first, e.g. the "
                                                "clean model's; its features and probs come from --features/--probs."),
        fit_labels: Optional[Path] = typer.Option(None, "--fit-labels", help="Label dir with the fit split's holes "
                                                  "(default: --labels), detected like the corrected split's."),
        out: Path = typer.Option(..., "--out", help="Label dir to write."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per batch (graphs of a batch train together)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Overwrite instead of resuming."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Fill the holes (255) of cleaned labels with a correction strategy (gat, gcn, prototype, mllc,
        crf, nearest). With ground truth present, report label quality before and after."""
        from rich.markup import escape

        from noisyseg.cli import ui
        from noisyseg.pipeline.correct import correct
        from noisyseg.params import parse_assignments

        report = correct(dataset, split, labels, strategy, out, features=features, probs=probs,
                         params=parse_assignments(param), crf=crf, device=device, batch_size=batch_size, force=force,
                         fit_split=fit_split, fit_labels=fit_labels,
                         track=ui.track, warn=lambda line: ui.err.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True))
        if as_json:
            ui.print_json(report)
            return
        t = report["timings"]
        stages = ["fit", "slic", "graph", "train", "predict", "crf"] if "fit" in t else ["slic", "graph", "train", "predict", "crf"]
        ui.out.print(ui.table(f"correct {split} ({strategy}{' + crf' if crf else ''}) -> {out}",
                              ["images", "hole share", "filled share", "s/image"] + [f"{s} s" for s in stages],
                              [[report["images"], report["hole_share"], report["filled_share"],
                                report["seconds_per_image"] if report["seconds_per_image"] is not None else float("nan")]
                               + [t.get(s, 0.0) for s in stages]]))
        rows = ui.quality_rows(report, [("input_label_quality", "input labels"), ("corrected_label_quality", "corrected labels")])
        if rows:
            ui.out.print(ui.table("label quality vs ground truth", ["labels", "mIoU", "precision", "coverage"], rows))
