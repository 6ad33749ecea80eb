"""``noisyseg export``: a label dir as palette PNGs in a dataset's colours."""

from __future__ import annotations

from pathlib import Path

from noisyseg.errors import InputError
from noisyseg.io import Dataset, LabelDir
from noisyseg.io.labels import read_label_png
from noisyseg.io.palette import check_palette, voc_palette
from noisyseg.pipeline.common import OutputDir, Timer, Track, no_track, write_report
from noisyseg.io.jsonfile import read_json


def load_classes_and_palette(source: str | Path) -> tuple[list[str], list[list[int]], str]:
    """Classes and palette of a dataset dir, or of a JSON file with ``classes`` and ``palette``;
    the Pascal VOC colour map when a dataset has no palette. Returns (classes, palette, origin)."""
    source = Path(source)
    if source.is_file():
        data = read_json(source)
        classes = data.get("classes") if isinstance(data, dict) else None
        if not isinstance(classes, list) or not classes:
            raise InputError(source, "'classes': a list of class names", repr(classes)[:60])
        return [str(c) for c in classes], check_palette(data.get("palette"), len(classes), source), str(source)
    ds = Dataset(source)
    if ds.palette is None:
        return ds.classes, voc_palette(ds.num_classes), "Pascal VOC colour map (the dataset has no palette)"
    return ds.classes, check_palette(ds.palette, ds.num_classes, ds.root / "dataset.json"), str(ds.root / "dataset.json")


def export_labels(labels: str | Path, palette: str | Path, out: str | Path, force: bool = False,
                  track: Track = no_track) -> dict:
    """Writes every ``<id>.png`` of ``labels`` to ``out`` as a palette PNG (ids as indices, the
    palette's colours, 255 white). Every label is checked before anything is written; a rerun
    resumes like the other commands."""
    timer = Timer()
    label_dir = LabelDir(labels).require()
    classes, colours, origin = load_classes_and_palette(palette)
    ids = sorted(p.stem for p in label_dir.root.glob("*.png") if not p.name.startswith("."))
    if not ids:
        raise InputError(label_dir.root, "a label dir with <id>.png files", "none")
    params = {"labels": str(Path(labels).resolve()), "palette": str(Path(palette).resolve())}
    with timer("check"):  # every label is read once before anything is written
        for image_id in track(ids, len(ids), "export: check"):
            read_label_png(label_dir.path(image_id), len(classes))
    output = OutputDir(out, "export", params, force)
    target = LabelDir(out)
    skipped = 0
    with timer("export"):
        for image_id in track(ids, len(ids), "export"):
            if output.done(target.path(image_id)):
                skipped += 1
                continue
            target.write(image_id, read_label_png(label_dir.path(image_id), len(classes)), colours)
    report = {"command": "export", **params, "palette_from": origin, "classes": classes, "images": len(ids),
              "skipped": skipped, "timings": timer.seconds}
    return write_report(out, report)
