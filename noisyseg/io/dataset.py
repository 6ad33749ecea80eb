"""A dataset directory: dataset.json, images/, masks/, splits/, optional tags.json.

```
dataset.json          {"name", "classes": [...], "ignore_index": 255, "palette"?: [[r,g,b], ...]}
images/<id>.jpg|png   RGB
masks/<id>.png        uint8 class ids, 255 = ignore
splits/<name>.txt     one id per line
tags.json             optional {id: [class names or ids]}
```
Image ids are unique across splits and never contain path separators.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX  # also importable from here, as before
from noisyseg.errors import InputError
from noisyseg.io.images import open_image
from noisyseg.io.jsonfile import read_json
from noisyseg.io.labels import read_label_png

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def check_id(image_id: str, where: str | os.PathLike) -> str:
    """Rejects ids that could escape a directory or are empty."""
    if not image_id or "/" in image_id or "\\" in image_id or image_id in (".", "..") or "\0" in image_id:
        raise InputError(where, "image ids without path separators", repr(image_id))
    return image_id


def _classes(classes: object, where: Path) -> list[str]:
    """dataset.json's class names: 1..255 distinct non-empty strings."""
    if not isinstance(classes, list) or not 0 < len(classes) <= 255 or \
            not all(isinstance(c, str) and c.strip() for c in classes):
        raise InputError(where, "'classes': a list of 1..255 class names", repr(classes)[:80])
    seen: set[str] = set()
    for name in classes:
        if name in seen:
            raise InputError(where, "'classes': distinct class names", f"'{name}' twice")
        seen.add(name)
    return list(classes)


def _palette(palette: object, where: Path) -> list[list[int]] | None:
    """dataset.json's optional palette: up to 256 ``[r, g, b]`` colours of 0..255 (class id order)."""
    if palette is None:
        return None
    ok = isinstance(palette, list) and len(palette) <= 256 and all(
        isinstance(rgb, list) and len(rgb) == 3 and all(type(v) is int and 0 <= v <= 255 for v in rgb)
        for rgb in palette)
    if not ok:
        raise InputError(where, "'palette': a list of [r, g, b] colours with values 0..255", repr(palette)[:80])
    return palette


class Dataset:
    """Read access to a dataset directory, validated on the way in.

    Example:
        >>> ds = Dataset("../shared/datasets/camvid")   # doctest: +SKIP
        >>> ids = ds.ids("train"); img = ds.load_image(ids[0]); gt = ds.load_mask(ids[0])
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        meta_path = self.root / "dataset.json"
        if not self.root.is_dir():
            raise InputError(self.root, "a dataset directory", "no such directory")
        if not meta_path.is_file():
            raise InputError(meta_path, "dataset.json with name and classes", "no such file")
        meta = read_json(meta_path)
        if not isinstance(meta, dict):
            raise InputError(meta_path, "an object with name and classes", type(meta).__name__)
        self.meta = meta
        self.name: str = str(meta.get("name", self.root.name))
        self.classes: list[str] = _classes(meta.get("classes"), meta_path)
        self.ignore_index: int = meta.get("ignore_index", IGNORE_INDEX)
        if type(self.ignore_index) is not int or self.ignore_index != IGNORE_INDEX:
            raise InputError(meta_path, "ignore_index 255", json.dumps(self.ignore_index))
        self.palette: list[list[int]] | None = _palette(meta.get("palette"), meta_path)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> list[str]:
        d = self.root / "splits"
        return sorted(p.stem for p in d.glob("*.txt")) if d.is_dir() else []

    def ids(self, split: str | None = None) -> list[str]:
        """Ids of a split (file order), or every image when ``split`` is None."""
        if split is None:
            return sorted(self._image_index)
        path = self.root / "splits" / f"{split}.txt"
        if not path.is_file():
            known = ", ".join(self.splits()) or "none"
            raise InputError(path, f"a split file (known splits: {known})", "no such file")
        try:
            ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise InputError(path, "a text file of image ids", "undecodable bytes") from None
        if not ids:
            raise InputError(path, "a split listing at least one image id", "an empty file")
        seen: set[str] = set()
        for image_id in ids:
            check_id(image_id, path)
            if image_id in seen:
                raise InputError(path, "each id once", f"'{image_id}' twice")
            seen.add(image_id)
        return ids

    @cached_property
    def _image_index(self) -> dict[str, Path]:
        d = self.root / "images"
        if not d.is_dir():
            raise InputError(d, "an images/ directory", "no such directory")
        index: dict[str, Path] = {}
        for entry in os.scandir(d):
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith("."):
                if stem in index:
                    raise InputError(d, "one image file per id", f"'{index[stem].name}' and '{entry.name}'")
                index[stem] = Path(entry.path)
        return index

    def image_path(self, image_id: str) -> Path:
        check_id(image_id, self.root / "images")
        try:
            return self._image_index[image_id]
        except KeyError:
            raise InputError(self.root / "images" / f"{image_id}.jpg", "an image file (.jpg or .png)", "no such file") from None

    def mask_path(self, image_id: str) -> Path:
        return self.root / "masks" / f"{check_id(image_id, self.root / 'masks')}.png"

    def has_mask(self, image_id: str) -> bool:
        return self.mask_path(image_id).is_file()

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) of the image, read from its header only."""
        with open_image(self.image_path(image_id), "a readable RGB image") as im:
            return im.height, im.width

    def load_image(self, image_id: str) -> np.ndarray:
        """RGB image, ``(H, W, 3)`` uint8."""
        with open_image(self.image_path(image_id), "a readable RGB image") as im:
            return np.asarray(im.convert("RGB"))

    def load_mask(self, image_id: str, size: tuple[int, int] | None = None) -> np.ndarray:
        """Ground-truth mask, ``(H, W)`` uint8 with ids in 0..C-1 or 255; checked against the image size."""
        if size is None:
            size = self.image_size(image_id)
        return read_label_png(self.mask_path(image_id), self.num_classes, size)

    @cached_property
    def tags(self) -> dict[str, list[int]] | None:
        """Image-level class ids from tags.json (names or ids), or None when there is no tags.json."""
        path = self.root / "tags.json"
        if not path.is_file():
            return None
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise InputError(path, "an object {id: [classes]}", type(raw).__name__)
        name_to_id = {n: i for i, n in enumerate(self.classes)}
        out: dict[str, list[int]] = {}
        for image_id, tags in raw.items():
            ids = []
            for t in tags:
                c = name_to_id.get(t, t) if isinstance(t, str) else t
                if not isinstance(c, int) or not 0 <= c < self.num_classes:
                    raise InputError(path, f"class names or ids in 0..{self.num_classes - 1} for '{image_id}'", repr(t))
                ids.append(c)
            out[check_id(image_id, path)] = sorted(set(ids))
        return out
