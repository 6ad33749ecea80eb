"""Cityscapes: ``leftImg8bit/<split>/<city>/<id>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<id>_gtFine_labelTrainIds.png`` (19 train ids, 255 ignore) or, where those
were not made, ``<id>_gtFine_labelIds.png`` mapped to train ids (the official table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError
from noisyseg.io.sources import Item, Source, require_dir
from noisyseg.io.sources.masks import UNKNOWN, MaskConverter

CLASSES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
           "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
PALETTE = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153],
           [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60], [255, 0, 0],
           [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32]]
# label id -> train id (cityscapesscripts' labels.py); ids 0..33, everything else ignored.
LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                  26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LAYOUT = "a Cityscapes directory (leftImg8bit/<split>/<city>/*_leftImg8bit.png, gtFine/<split>/<city>/...)"
SUFFIX = "_leftImg8bit.png"


def label_id_map() -> np.ndarray:
    table = np.full(256, UNKNOWN, np.int16)
    table[:34] = IGNORE_INDEX
    table[IGNORE_INDEX] = IGNORE_INDEX
    for label_id, train_id in LABEL_TO_TRAIN.items():
        table[label_id] = train_id
    return table


def train_id_map() -> np.ndarray:
    table = np.full(256, UNKNOWN, np.int16)
    table[: len(CLASSES)] = np.arange(len(CLASSES))
    table[IGNORE_INDEX] = IGNORE_INDEX
    return table


class CityscapesMasks:
    """labelTrainIds files as they are, labelIds files through the official table."""

    def __init__(self):
        self.train = MaskConverter(train_id_map(), None)
        self.label = MaskConverter(label_id_map(), None)

    def __call__(self, path: Path) -> np.ndarray:
        return (self.train if path.name.endswith("_labelTrainIds.png") else self.label)(path)


def scan(src: Path, classes_file: Path | None = None) -> Source:
    images = require_dir(src / "leftImg8bit", LAYOUT)
    gt = src / "gtFine"
    splits: dict[str, list[str]] = {}
    items = []
    for split_dir in sorted(p for p in images.iterdir() if p.is_dir()):
        ids = []
        for image in sorted(split_dir.glob(f"*/*{SUFFIX}")):
            image_id = image.name[: -len(SUFFIX)]
            stem = gt / split_dir.name / image.parent.name / f"{image_id}_gtFine"
            mask = next((m for m in (Path(f"{stem}_labelTrainIds.png"), Path(f"{stem}_labelIds.png")) if m.is_file()), None)
            items.append(Item(image_id, image, mask))
            ids.append(image_id)
        if ids:
            splits[split_dir.name] = ids
    if not items:
        raise InputError(images, LAYOUT, f"no <city>/*{SUFFIX} files in any split directory")
    notes = [] if gt.is_dir() else ["no gtFine/ directory: images only"]
    return Source("cityscapes", CLASSES, PALETTE, items, splits, CityscapesMasks(), notes)
