"""``noisyseg demo``: run the detect chain end to end on an embedded procedural dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        workdir: Path = typer.Option(Path("noisyseg-demo"), "--workdir", help="Where data, runs and outputs go (reused on rerun)."),
        epochs: int = typer.Option(25, "--epochs", min=1, help="Training epochs of the clean model."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    ):
        """Build a small procedural dataset with noisy labels, train a clean model on its strong split,
        predict, detect noisy pixels with small-loss (θ calibrated on strong) and show label quality per stage."""
        import time

        from noisyseg.cli import ui
        from noisyseg.pipeline.demo import demo

        start = time.perf_counter()
        result = demo(workdir, epochs=epochs, device=device, track=ui.track,
                      status=lambda msg: ui.err.print(f"[bold cyan]demo[/] {ui.fmt(msg)}"))
        rows = [[s["stage"], s["miou"], s["precision"], s["coverage"]] for s in result["stages"]]
        ui.out.print(ui.table("label quality on the weak split, per stage", ["stage", "mIoU", "precision", "coverage"], rows))
        q = result["detection_quality"]
        ui.out.print(f"small-loss θ = {result['theta']:.3g}; flagged pixels: precision {q['precision']:.3f}, "
                     f"recall {q['recall']:.3f}, F1 {q['f1']:.3f}, AUROC {q.get('auroc', float('nan')):.3f}")
        ui.out.print(f"done in {time.perf_counter() - start:.0f} s; outputs in {ui.fmt(result['workdir'])}")
