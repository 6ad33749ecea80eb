"""Class tables of imported datasets: names, colours and how source mask values map to ids.

A class named void, ignore, unlabeled or unlabelled (any case) becomes the ignore index 255 and is
not one of the classes. A class-map JSON file (``--classes``) is one of:

- ``["road", "car", ...]``: names of ids 0, 1, ... (masks hold the ids);
- ``{"road": [128, 64, 128], ...}``: names with colours, ids in that order (colour or id masks);
- ``{"classes": [...], "palette": [[r, g, b], ...]}``: like a dataset.json;
- ``{"0": "road", "1": "car", "255": "void"}``: mask value -> name; ids follow the values' order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError
from noisyseg.io.palette import check_palette
from noisyseg.io.sources.masks import UNKNOWN, MaskConverter, identity_map, pack
from noisyseg.io.jsonfile import read_json

VOID_NAMES = {"void", "ignore", "unlabeled", "unlabelled"}


@dataclass
class ClassTable:
    classes: list[str]
    palette: list[list[int]] | None
    index_map: np.ndarray | None  #: (256,) int16 source index -> id
    colours: dict[int, int] | None  #: packed colour -> id

    def converter(self) -> MaskConverter:
        return MaskConverter(self.index_map, self.colours)


def _check(classes: list[str], where) -> list[str]:
    if not classes or len(classes) > 255:
        raise InputError(where, "1..255 classes (besides void)", f"{len(classes)}")
    if len(set(classes)) != len(classes):
        twice = next(c for c in classes if classes.count(c) > 1)
        raise InputError(where, "each class name once", f"'{twice}' twice")
    return classes


def from_names(names: list[str], where) -> ClassTable:
    """Masks hold ids 0..C-1 directly."""
    names = [str(n) for n in names]
    if any(n.lower() in VOID_NAMES for n in names):
        return from_values({i: n for i, n in enumerate(names)}, where)
    return ClassTable(_check(names, where), None, identity_map(len(names)), None)


def from_colours(named: list[tuple[str, list[int]]], where) -> ClassTable:
    """Names with colours, in id order; void colours become 255. Masks may also hold the ids."""
    palette = check_palette([list(rgb) for _, rgb in named], len(named), where)
    classes, colours, kept = [], {}, []
    index_map = np.full(256, UNKNOWN, np.int16)
    index_map[IGNORE_INDEX] = IGNORE_INDEX
    for (name, _), rgb in zip(named, palette):
        if pack(rgb) in colours:
            raise InputError(where, "a different colour for each class", f"{rgb} twice")
        if str(name).lower() in VOID_NAMES:
            colours[pack(rgb)] = IGNORE_INDEX
            continue
        colours[pack(rgb)] = len(classes)
        index_map[len(classes)] = len(classes)
        classes.append(str(name))
        kept.append(rgb)
    return ClassTable(_check(classes, where), kept, index_map, colours)


def from_values(values: dict[int, str], where) -> ClassTable:
    """Mask value -> name; the ids follow the values' order, void values become 255."""
    index_map = np.full(256, UNKNOWN, np.int16)
    index_map[IGNORE_INDEX] = IGNORE_INDEX
    classes = []
    for value in sorted(values):
        if not 0 <= value <= 255:
            raise InputError(where, "mask values 0..255 as keys", str(value))
        name = str(values[value])
        if name.lower() in VOID_NAMES:
            index_map[value] = IGNORE_INDEX
        else:
            index_map[value] = len(classes)
            classes.append(name)
    return ClassTable(_check(classes, where), None, index_map, None)


def load_class_file(path: Path) -> ClassTable:
    """Reads a class-map JSON file (see the module doc)."""
    if not path.is_file():
        raise InputError(path, "a class-map JSON file", "no such file")
    data = read_json(path)
    if isinstance(data, list) and all(isinstance(n, str) for n in data):
        return from_names(data, path)
    if isinstance(data, dict) and isinstance(data.get("classes"), list):
        names = [str(n) for n in data["classes"]]
        if data.get("palette") is None:
            return from_names(names, path)
        palette = check_palette(data["palette"], len(names), path)
        return from_colours(list(zip(names, palette[: len(names)])), path)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        return from_colours(list(data.items()), path)
    if isinstance(data, dict) and data and all(k.strip().isdigit() for k in data) and all(isinstance(v, str) for v in data.values()):
        return from_values({int(k): v for k, v in data.items()}, path)
    raise InputError(path, "a list of class names, {name: [r, g, b]}, {\"classes\", \"palette\"} or "
                     "{mask value: name}", f"{type(data).__name__} {json.dumps(data)[:60]}")
