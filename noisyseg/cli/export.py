"""``noisyseg export``: a label dir as palette PNGs in a dataset's colours."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        labels: Path = typer.Argument(..., help="Label dir (<id>.png class ids)."),
        palette: Path = typer.Option(..., "--palette", help="Dataset dir (or a JSON file with classes and palette)."),
        out: Path = typer.Option(..., "--out", help="Directory to write the palette PNGs to."),
        force: bool = typer.Option(False, "--force", help="Overwrite instead of resuming."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Write a label dir's masks as palette PNGs (class ids as indices, the dataset's colours), the
        form VOC-style tools and image viewers show in colour."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.export import export_labels

        report = export_labels(labels, palette, out, force=force, track=ui.track)
        if as_json:
            ui.print_json(report)
            return
        ui.out.print(ui.table(f"export {labels} -> {out}", ["images", "skipped", "palette"],
                              [[report["images"], report["skipped"], report["palette_from"]]]))
