"""Dataset layouts people bring, read into one description that ``noisyseg import`` writes out.

Each layout module has ``scan(src, classes_file) -> Source``: it checks the layout (one clear
error naming what is missing) and lists every image, its mask and its splits without reading
pixels. Formats: ``voc``, ``cityscapes``, ``camvid``, ``folder``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from noisyseg.errors import InputError, ParameterError

FORMATS = ("voc", "cityscapes", "camvid", "folder")


@dataclass
class Item:
    id: str
    image: Path
    mask: Path | None


@dataclass
class Source:
    """What an import writes: classes (and palette), images with their masks, and splits."""

    format: str
    classes: list[str]
    palette: list[list[int]] | None
    items: list[Item]
    splits: dict[str, list[str]]
    convert: Callable[[Path], np.ndarray]  #: mask file -> (H, W) uint8 ids
    notes: list[str] = field(default_factory=list)


def scan(fmt: str, src: str | os.PathLike, classes_file: str | os.PathLike | None = None) -> Source:
    if fmt not in FORMATS:
        raise ParameterError(f"unknown import format '{fmt}'; known: {', '.join(FORMATS)}")
    src = Path(src)
    if not src.is_dir():
        raise InputError(src, f"a {fmt} dataset directory", "no such directory")
    if classes_file is not None and fmt in ("voc", "cityscapes"):
        raise ParameterError(f"--classes: the {fmt} format has its own classes; pass it only for camvid or folder")
    from importlib import import_module

    return import_module(f"noisyseg.io.sources.{fmt}").scan(src, Path(classes_file) if classes_file else None)


def require_dir(path: Path, layout: str) -> Path:
    if not path.is_dir():
        raise InputError(path, layout, "no such directory")
    return path
