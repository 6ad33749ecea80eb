"""CamVid with colour masks and a colour table.

The table is ``label_colors.txt`` (``R G B<tab>Name`` lines) or ``class_dict.csv`` (``name,r,g,b``)
in SRC, or the ``--classes`` file. Images and masks are either split directories ``<split>/`` with
``<split>_labels/`` beside them (masks ``<stem>_L.png`` or ``<stem>.png``), or one directory of
images (``701_StillsRaw_full/`` or ``images/``) with one of masks (``LabeledApproved_full/``,
``labels/``), which makes the split ``all``. Void becomes 255.
"""

from __future__ import annotations

import csv
from pathlib import Path

from noisyseg.errors import InputError
from noisyseg.io.dataset import IMAGE_SUFFIXES
from noisyseg.io.sources import Item, Source
from noisyseg.io.sources.classes import ClassTable, from_colours, load_class_file

LAYOUT = ("a CamVid directory (label_colors.txt or class_dict.csv, and <split>/ + <split>_labels/ or "
          "701_StillsRaw_full/ + LabeledApproved_full/)")
FLAT = (("701_StillsRaw_full", "LabeledApproved_full"), ("images", "labels"))


def colour_table(src: Path, classes_file: Path | None) -> ClassTable:
    if classes_file is not None:
        return load_class_file(classes_file)
    txt, dict_csv = src / "label_colors.txt", src / "class_dict.csv"
    if txt.is_file():
        named = []
        for n, line in enumerate(txt.read_text().splitlines(), 1):
            if line.strip():
                parts = line.split()
                try:
                    named.append((" ".join(parts[3:]), [int(v) for v in parts[:3]]))
                except ValueError:
                    raise InputError(txt, "lines 'R G B<tab>Name'", f"line {n}: {line.strip()[:40]!r}") from None
        return from_colours(named, txt)
    if dict_csv.is_file():
        with dict_csv.open(newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            named = [(r["name"], [int(r["r"]), int(r["g"]), int(r["b"])]) for r in rows]
        except (KeyError, ValueError, TypeError):
            raise InputError(dict_csv, "columns name,r,g,b with integer colours", "other columns or values") from None
        return from_colours(named, dict_csv)
    raise InputError(src, LAYOUT, "no label_colors.txt or class_dict.csv (or pass --classes FILE)")


def _images(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _mask_of(image: Path, masks: Path) -> Path | None:
    for name in (f"{image.stem}_L.png", f"{image.stem}.png"):
        if (masks / name).is_file():
            return masks / name
    return None


def scan(src: Path, classes_file: Path | None = None) -> Source:
    pairs = [(p.name, p, src / f"{p.name}_labels") for p in sorted(src.iterdir())
             if p.is_dir() and (src / f"{p.name}_labels").is_dir()]
    if not pairs:
        pairs = [("all", src / a, src / b) for a, b in FLAT if (src / a).is_dir() and (src / b).is_dir()][:1]
    if not pairs:
        raise InputError(src, LAYOUT, "no image and mask directories")
    table = colour_table(src, classes_file)
    items, splits = [], {}
    for split, image_dir, mask_dir in pairs:
        ids = []
        for image in _images(image_dir):
            items.append(Item(image.stem, image, _mask_of(image, mask_dir)))
            ids.append(image.stem)
        splits[split] = ids
    return Source("camvid", table.classes, table.palette, items, splits, table.converter())
