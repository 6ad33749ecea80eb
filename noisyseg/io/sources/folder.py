"""A folder: ``images/<stem>.jpg|png``, ``masks/<stem>.png`` (grey or palette ids, or colour), a
class-map JSON (``--classes FILE``, else ``classes.json`` in SRC; see
:mod:`noisyseg.io.sources.classes`) and optionally ``splits/<name>.txt`` (else one split ``all``)."""

from __future__ import annotations

from pathlib import Path

from noisyseg.errors import InputError
from noisyseg.io.dataset import IMAGE_SUFFIXES
from noisyseg.io.sources import Item, Source, require_dir
from noisyseg.io.sources.classes import load_class_file

LAYOUT = "a folder with images/ and masks/ (and a class-map JSON: --classes FILE or classes.json)"


def scan(src: Path, classes_file: Path | None = None) -> Source:
    images, masks = require_dir(src / "images", LAYOUT), require_dir(src / "masks", LAYOUT)
    if classes_file is None:
        classes_file = src / "classes.json"
        if not classes_file.is_file():
            raise InputError(classes_file, "a class-map JSON file (or pass --classes FILE)", "no such file")
    table = load_class_file(classes_file)
    items = [Item(p.stem, p, masks / f"{p.stem}.png" if (masks / f"{p.stem}.png").is_file() else None)
             for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not items:
        raise InputError(images, "image files (.jpg, .jpeg, .png)", "none")
    known = {it.id for it in items}
    split_dir = src / "splits"
    splits = {}
    for path in sorted(split_dir.glob("*.txt")) if split_dir.is_dir() else []:
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        missing = [i for i in ids if i not in known]
        if missing:
            raise InputError(path, "ids of images in images/", f"'{missing[0]}' ({len(missing)} unknown)")
        splits[path.stem] = ids
    return Source("folder", table.classes, table.palette, items, splits or {"all": [it.id for it in items]},
                  table.converter())
