"""Pascal VOC: ``JPEGImages/<id>.jpg``, palette PNGs ``SegmentationClass/<id>.png`` (indices are the
21 class ids, 255 the border) and splits ``ImageSets/Segmentation/<split>.txt``."""

from __future__ import annotations

from pathlib import Path

from noisyseg.errors import InputError
from noisyseg.io.palette import voc_palette
from noisyseg.io.sources import Item, Source, require_dir
from noisyseg.io.sources.classes import from_colours

CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
BORDER = [224, 224, 192]  # the border colour of VOC's palette (index 255)
LAYOUT = "a Pascal VOC directory (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/*.txt)"


def scan(src: Path, classes_file: Path | None = None) -> Source:
    if not (src / "JPEGImages").is_dir():
        inner = sorted(p for p in [*src.glob("VOC20*"), *src.glob("VOCdevkit/VOC20*")] if (p / "JPEGImages").is_dir())
        hint = f" (did you mean {inner[0]}?)" if inner else ""
        raise InputError(src, LAYOUT + hint, "no JPEGImages/")
    images, masks = src / "JPEGImages", require_dir(src / "SegmentationClass", LAYOUT)
    split_files = sorted(require_dir(src / "ImageSets" / "Segmentation", LAYOUT).glob("*.txt"))
    if not split_files:
        raise InputError(src / "ImageSets" / "Segmentation", LAYOUT, "no split .txt files")
    splits = {p.stem: [line.split()[0] for line in p.read_text().splitlines() if line.strip()] for p in split_files}
    items = {}
    for split, ids in splits.items():
        for image_id in ids:
            if image_id not in items:
                image = images / f"{image_id}.jpg"
                if not image.is_file():
                    raise InputError(image, f"the image of id '{image_id}' listed in ImageSets/Segmentation/{split}.txt",
                                     "no such file")
                mask = masks / f"{image_id}.png"
                items[image_id] = Item(image_id, image, mask if mask.is_file() else None)
    table = from_colours([*zip(CLASSES, voc_palette(len(CLASSES))), ("void", BORDER)], src)
    return Source("voc", table.classes, table.palette, list(items.values()), splits, table.converter())
