"""Label maps in colour and flagged pixels over the photo, as ``(H, W, 3)`` uint8 arrays."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.io.atomic import atomic_write
from noisyseg.io.palette import IGNORE_COLOUR

FLAG_COLOUR = (255, 0, 0)


def colour_table(palette: list[list[int]]) -> np.ndarray:
    """``(256, 3)`` uint8 lookup: the palette's colours, white for the ignore index and any id past it."""
    table = np.tile(np.array(IGNORE_COLOUR, np.uint8), (256, 1))
    table[: min(len(palette), IGNORE_INDEX)] = np.asarray(palette[:IGNORE_INDEX], np.uint8).reshape(-1, 3)
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


def fit_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(H, W)`` scaled down so that neither exceeds ``max_side`` (never up)."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(picture: np.ndarray, size: tuple[int, int], smooth: bool) -> np.ndarray:
    """``(H, W[, 3])`` uint8 to ``size`` = (H', W'): bilinear for photos, nearest for labels and masks."""
    from PIL import Image

    if picture.shape[:2] == tuple(size):
        return picture
    im = Image.fromarray(np.ascontiguousarray(picture))
    return np.asarray(im.resize((size[1], size[0]), Image.BILINEAR if smooth else Image.NEAREST))


def gallery_panels(photo: np.ndarray, given: np.ndarray, predicted: np.ndarray, flags: np.ndarray,
                   palette: list[list[int]], corrected: np.ndarray | None = None, truth: np.ndarray | None = None,
                   max_side: int = 640) -> list[tuple[str, str, np.ndarray]]:
    """The pictures of one image side by side, each ``(name, title, (H', W', 3) uint8)``: the photo,
    the given label, the prediction, the flagged pixels in red over the photo, and the corrected
    label and the ground truth when given. ``photo`` ``(H, W, 3)``; labels ``(H, W)`` uint8 ids;
    ``flags`` ``(H, W)`` bool. Pictures larger than ``max_side`` are scaled down."""
    size = fit_size(*photo.shape[:2], max_side)
    small = resize(photo, size, smooth=True)

    def label(ids: np.ndarray) -> np.ndarray:
        return colourise(resize(np.asarray(ids, np.uint8), size, smooth=False), palette)

    panels = [("photo", "photo", small), ("given", "given label", label(given)),
              ("predicted", "prediction (argmax)", label(predicted)),
              ("flagged", "flagged pixels (red)", overlay(small, resize(flags.astype(np.uint8), size, False) > 0))]
    if corrected is not None:
        panels.append(("corrected", "corrected label", label(corrected)))
    if truth is not None:
        panels.append(("truth", "ground truth", label(truth)))
    return panels
