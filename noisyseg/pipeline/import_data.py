"""``noisyseg import``: a dataset directory (the data contract) from a layout people bring.

The whole dataset is written into a staging directory beside ``out`` and renamed into place at
the end, so an import that fails on its 500th mask leaves nothing behind, and one that succeeds
never shows a half-converted dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, NoisySegError
from noisyseg.io.atomic import atomic_write, replace_dir, write_json
from noisyseg.io.dataset import IMAGE_SUFFIXES, check_id
from noisyseg.io.labels import write_label_png
from noisyseg.io.sources import Source, scan
from noisyseg.pipeline.common import RUN_FILE, Timer, Track, no_track, write_report


def import_dataset(fmt: str, src: str | Path, out: str | Path, copy: bool = False, classes: str | Path | None = None,
                   force: bool = False, track: Track = no_track) -> dict:
    """Converts ``src`` (layout ``fmt``: voc, cityscapes, camvid, folder) into a dataset at ``out``:
    images linked (or copied with ``copy``), masks converted to uint8 ids, splits and dataset.json
    written. Returns the report (also ``out/report.json``)."""
    timer = Timer()
    src, out = Path(src), Path(out)
    source = scan(fmt, src, classes)
    _check_items(source, src)
    _check_out(out, force)
    params = {"format": fmt, "src": str(src.resolve()), "copy": copy, "classes": str(Path(classes).resolve()) if classes else None}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        with timer("import"):
            counts = _write(source, staging, out.name, copy, track)
        report = {"command": "import", **params, "out": str(out.resolve()), "classes": source.classes,
                  "images": len(source.items), **counts, "splits": {k: len(v) for k, v in source.splits.items()},
                  "notes": source.notes, "timings": timer.seconds}
        write_json(staging / RUN_FILE, {"command": "import", "params": params})
        report = write_report(staging, report)
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _check_items(source: Source, src: Path) -> None:
    """Ids valid and unique, images of a usable type, before anything is written."""
    seen: dict[str, Path] = {}
    for item in source.items:
        check_id(item.id, item.image.parent)
        if item.id in seen:
            raise InputError(src, "unique image ids (file names without their suffix)",
                             f"'{item.id}' twice: {seen[item.id]} and {item.image}")
        seen[item.id] = item.image
        if item.image.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(item.image, "a .jpg or .png image", f"a '{item.image.suffix}' file")


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(out, "a new dataset directory", "a file")
    if out.is_dir() and any(out.iterdir()):
        marker = out / RUN_FILE
        try:
            previous = json.loads(marker.read_text()).get("command") if marker.is_file() else None
        except (json.JSONDecodeError, AttributeError):
            previous = None
        if previous != "import":
            raise InputError(out, "a new or empty directory", "files not written by 'noisyseg import'")
        if not force:
            raise NoisySegError(f"{out}: expected a new or empty directory, found a previous import "
                                "(pass --force to replace it)")


def _write(source: Source, root: Path, name: str, copy: bool, track: Track) -> dict:
    from PIL import Image

    masks = 0
    (root / "images").mkdir()
    for item in track(source.items, len(source.items), f"import {source.format}"):
        target = root / "images" / f"{item.id}{item.image.suffix.lower()}"
        if copy:
            shutil.copyfile(item.image, target)
        else:
            try:
                os.symlink(item.image.resolve(), target)
            except OSError as e:
                raise NoisySegError(f"{target}: expected to link the image, found the link refused ({e.strerror}); "
                                    "pass --copy") from None
        if item.mask is None:
            continue
        ids = source.convert(item.mask)
        with Image.open(item.image) as im:
            size = (im.height, im.width)
        if ids.shape != size:
            raise InputError(item.mask, f"a mask of size {size[1]}x{size[0]} (W x H) like its image",
                             f"{ids.shape[1]}x{ids.shape[0]}")
        write_label_png(root / "masks" / f"{item.id}.png", ids, source.palette)
        masks += 1
    for split, ids in source.splits.items():
        atomic_write(root / "splits" / f"{split}.txt", lambda f: f.write("\n".join(ids) + "\n"), mode="w")
    meta = {"name": name, "classes": source.classes, "ignore_index": IGNORE_INDEX}
    if source.palette:
        meta["palette"] = source.palette
    meta["source"] = f"noisyseg import {source.format}"
    write_json(root / "dataset.json", meta)
    return {"masks": masks, "images_without_mask": len(source.items) - masks}
