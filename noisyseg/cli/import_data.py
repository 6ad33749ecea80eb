"""``noisyseg import``: a dataset directory from Pascal VOC, Cityscapes, CamVid or a plain folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        fmt: str = typer.Argument(..., metavar="FORMAT", help="voc, cityscapes, camvid or folder."),
        src: Path = typer.Argument(..., help="The dataset as it was downloaded."),
        out: Path = typer.Option(..., "--out", help="Dataset directory to create."),
        copy: bool = typer.Option(False, "--copy", help="Copy the images instead of linking them."),
        classes: Optional[Path] = typer.Option(None, "--classes", help="Class-map JSON for camvid or folder: a list of "
                                               "names, {name: [r, g, b]}, {classes, palette} or {mask value: name}."),
        force: bool = typer.Option(False, "--force", help="Replace a previous import at --out."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Convert a dataset layout into noisyseg's (images/, masks/ of uint8 class ids, splits/,
        dataset.json): VOC palette masks, Cityscapes train ids (labelIds mapped), CamVid colour masks
        with a colour table, or images/ + masks/ with a class map. Nothing is left behind on error."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.import_data import import_dataset

        report = import_dataset(fmt, src, out, copy=copy, classes=classes, force=force, track=ui.track)
        if as_json:
            ui.print_json(report)
            return
        ui.out.print(ui.table(f"import {fmt} {src} -> {out}", ["images", "masks", "classes", "splits"],
                              [[report["images"], report["masks"], len(report["classes"]),
                                ", ".join(f"{k} ({v})" for k, v in report["splits"].items())]]))
        for note in report["notes"]:
            ui.err.print(f"note: {ui.escape(note)}")
