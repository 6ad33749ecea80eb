"""``noisyseg demo``: the whole chain, detect -> correct -> train, on an embedded procedural dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        workdir: Path = typer.Option(Path("noisyseg-demo"), "--workdir", help="Where data, runs and outputs go (reused on rerun)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Run every stage again from scratch."),
    ):
        """Build a small procedural dataset (16 exact masks, 96 noisy ones, 40 test images) and run
        the chain on it: a clean model from the exact masks, detect the noisy pixels, correct them,
        train a final model on the result, and compare it on test with the clean model alone and a
        model trained on the noisy labels. The chain is WORKDIR/pipeline.toml: copy it for your data."""
        import time

        from noisyseg.cli import ui
        from noisyseg.cli.run import print_quality, train_progress
        from noisyseg.pipeline.demo import demo

        start = time.perf_counter()
        with train_progress() as on_step:
            result = demo(workdir, device=device, force=force, track=ui.track, on_step=on_step,
                          status=lambda msg: ui.err.print(f"[bold cyan]demo[/] {ui.fmt(msg)}"))
        print_quality(result)
        s = result["story"]
        ui.out.print(f"weak labels: noisy {s['noisy labels']['miou']:.3f} mIoU -> detected "
                     f"{s['detected']['miou']:.3f} (precision {s['detected']['precision']:.3f} at coverage "
                     f"{s['detected']['coverage']:.3f}) -> corrected {s['corrected']['miou']:.3f}")
        ui.out.print(f"test mIoU: final model {s['final model (test)']['miou']:.3f}, clean model alone "
                     f"{s['clean model (test)']['miou']:.3f}, model trained on the noisy labels "
                     f"{s['noisy-label model (test)']['miou']:.3f}")
        ui.out.print(f"report: {ui.fmt(Path(result['workspace']) / 'report' / 'index.html')}; "
                     f"done in {time.perf_counter() - start:.0f} s")
