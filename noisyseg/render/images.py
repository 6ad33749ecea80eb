"""Label maps in colour and flagged pixels over the photo, as ``(H, W, 3)`` uint8 arrays."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from noisyseg.io.atomic import atomic_write
from noisyseg.io.palette import IGNORE_COLOUR

FLAG_COLOUR = (255, 0, 0)


def colour_table(palette: list[list[int]]) -> np.ndarray:
    """``(256, 3)`` uint8 lookup: the palette's colours, white for the ignore index and any id past it."""
    table = np.tile(np.array(IGNORE_COLOUR, np.uint8), (256, 1))
    table[: min(len(palette), 255)] = np.asarray(palette[:255], np.uint8).reshape(-1, 3)
    return table


def colourise(label: np.ndarray, palette: list[list[int]]) -> np.ndarray:
    """``(H, W)`` uint8 class ids -> ``(H, W, 3)`` uint8 colours."""
    return colour_table(palette)[np.asarray(label, np.uint8)]


def overlay(image: np.ndarray, mask: np.ndarray, colour=FLAG_COLOUR, alpha: float = 0.65) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with the pixels of ``mask`` ``(H, W)`` bool blended towards ``colour``."""
    out = image.copy()
    blend = image[mask].astype(np.float32) * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    out[mask] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return out


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Writes an ``(H, W, 3)`` uint8 array as an RGB PNG, atomically."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").save(buf, format="PNG", compress_level=3)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
