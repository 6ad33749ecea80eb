"""A small procedural dataset: textured shapes on a textured background, in the dataset layout.

Each class has its own stripe orientation, frequency and colour, jittered per image, so a small
network can learn it in a minute on a CPU, while the noisy labels made from its masks look like
real pseudo-mask noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.io import LabelDir
from noisyseg.io.atomic import atomic_write, write_json

CLASSES = ["background", "disc", "square", "triangle", "ring"]
PALETTE = [[0, 0, 0], [220, 60, 60], [60, 180, 75], [70, 110, 230], [240, 200, 40]]
# (orientation rad, spatial frequency cycles/px, base colour)
_TEXTURES = [(0.3, 0.05, (90, 100, 90)), (0.0, 0.25, (200, 80, 70)), (np.pi / 2, 0.2, (80, 170, 90)),
             (np.pi / 4, 0.3, (80, 100, 210)), (-np.pi / 4, 0.15, (210, 190, 60))]


def _texture(k: int, H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    theta, freq, colour = _TEXTURES[k]
    theta += rng.normal(0, 0.1)
    freq *= rng.uniform(0.85, 1.15)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    wave = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
    base = np.array(colour, np.float32) + rng.normal(0, 20, 3)
    img = base[None, None] + 45 * wave[..., None] + rng.normal(0, 18, (H, W, 3))
    return img


def _shape_mask(kind: int, H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    r = rng.uniform(0.12, 0.25) * min(H, W)
    cy, cx = rng.uniform(r, H - r), rng.uniform(r, W - r)
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if kind == 2:
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    if kind == 3:
        return (yy - cy <= r * 0.7) & (yy - cy >= -r + 1.7 * np.abs(xx - cx))
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    return (d <= r) & (d >= 0.55 * r)


def make_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One ``(size, size, 3)`` uint8 image and its ``(size, size)`` uint8 mask."""
    H = W = size
    img = _texture(0, H, W, rng)
    mask = np.zeros((H, W), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(1, len(CLASSES)))
        m = _shape_mask(kind, H, W, rng)
        img[m] = _texture(kind, H, W, rng)[m]
        mask[m] = kind
    return np.clip(img, 0, 255).astype(np.uint8), mask


def make_dataset(root: str | Path, splits: dict[str, int] | None = None, size: int = 96, seed: int = 0) -> Path:
    """Writes the dataset (or returns it untouched when ``root/dataset.json`` already exists)."""
    from PIL import Image

    root = Path(root)
    if (root / "dataset.json").is_file():
        return root
    splits = splits or {"strong": 40, "weak": 60}
    rng = np.random.default_rng(seed)
    masks = LabelDir(root / "masks")
    for split, n in splits.items():
        ids = [f"{split}_{i:04d}" for i in range(n)]
        for image_id in ids:
            image, mask = make_image(rng, size)
            atomic_write(root / "images" / f"{image_id}.png", lambda f: Image.fromarray(image).save(f, format="PNG"))
            masks.write(image_id, mask, PALETTE)
        atomic_write(root / "splits" / f"{split}.txt", lambda f: f.write("\n".join(ids) + "\n"), mode="w")
    write_json(root / "dataset.json", {"name": "noisyseg-shapes", "classes": CLASSES, "ignore_index": IGNORE_INDEX,
                                       "palette": PALETTE, "source": f"noisyseg.synthetic seed {seed}"})
    return root
