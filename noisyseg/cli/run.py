"""``noisyseg run PIPELINE.toml``: every stage of a chain from one file, resumable."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        pipeline: Path = typer.Argument(..., help="Pipeline file (TOML): the dataset, the workspace and the stages."),
        workspace: Optional[Path] = typer.Option(None, "--workspace",
                                                 help="Where the stages write (default: the file's 'workspace', else "
                                                      "a directory named after the file, beside it)."),
        dataset: Optional[Path] = typer.Option(None, "--dataset", help="Use this dataset instead of the file's."),
        device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default: the file's, else auto)."),
        overrides: List[str] = typer.Option([], "--set",
                                            help="Override one key of the file: stages.NAME.KEY=VALUE (a TOML "
                                                 "value, e.g. stages.clean.epochs=50; repeatable)."),
        only: List[str] = typer.Option([], "--only", metavar="STAGE",
                                       help="Run this stage and the earlier ones it reads from, nothing else "
                                            "(repeatable)."),
        until: Optional[str] = typer.Option(None, "--until", metavar="STAGE",
                                            help="Run the stages up to and including this one, nothing after."),
        force: bool = typer.Option(False, "--force", help="Run every stage again from scratch (of those selected)."),
        check: bool = typer.Option(False, "--check", help="Check the file and show what would run; run nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ):
        """Run a pipeline file: train a clean model, predict, detect, correct, weight, train a final
        model, report: each stage writes WORKSPACE/STAGE with the usual command's outputs.

        The whole file is checked before any work. A rerun skips finished stages, resumes an
        interrupted one and reruns a changed stage and everything that depends on it. Ends with
        a table of label quality per stage where the dataset has ground truth."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.run import load_pipeline, planned, run_pipeline, select

        p = load_pipeline(pipeline, dataset=dataset, workspace=workspace, device=device, overrides=overrides)
        p = select(p, only=only, until=until)
        if check:
            rows = [[s["stage"], s["command"], "+".join(s["splits"]), s["action"]] for s in planned(p, force)]
            ui.out.print(ui.table(f"{pipeline} -> {p.workspace}", ["stage", "command", "splits", "would"], rows))
            return
        with train_progress() as on_step:
            result = run_pipeline(p, force=force, track=ui.track, on_step=on_step,
                                  status=lambda msg: ui.err.print(f"[bold cyan]run[/] {ui.fmt(msg)}"))
        if as_json:
            ui.print_json(result)
            return
        print_quality(result)
        ui.out.print(f"outputs in {ui.fmt(result['workspace'])}")


def print_quality(result: dict) -> None:
    """The label-quality table of a pipeline run."""
    from noisyseg.cli import ui

    rows = [[q["stage"], q["command"], q["split"], q["miou"], q["precision"], q["coverage"]] for q in result["quality"]]
    if rows:
        ui.out.print(ui.table("label quality per stage (vs ground truth)",
                              ["stage", "command", "split", "mIoU", "precision", "coverage"], rows))


@contextmanager
def train_progress():
    """``on_step(stage, epoch, step, steps, loss)`` for the pipeline's train stages: one bar per stage."""
    from rich.progress import TextColumn

    from noisyseg.cli import ui

    with ui.progress(TextColumn("loss {task.fields[loss]}")) as bar:
        tasks: dict[str, int] = {}

        def on_step(stage: str, epochs: int, epoch: int, step: int, steps: int, loss) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=None, loss="-")
            loss = loss["loss"] if isinstance(loss, dict) else loss
            bar.update(tasks[stage], description=f"{stage} epoch {epoch + 1}/{epochs}",
                       completed=epoch * steps + step + 1, total=epochs * steps or None, loss=f"{loss:.3f}")

        yield on_step
