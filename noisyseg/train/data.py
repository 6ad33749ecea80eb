"""Training samples: image, labels (a label dir or GT masks), optional per-pixel weights, augmented."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from noisyseg.io import Dataset, LabelDir, WeightsDir

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
IGNORE = 255


def normalise(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32, ImageNet mean/std."""
    t = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)
    return (t - MEAN) / STD


class SegmentationSamples(torch.utils.data.Dataset):
    """Random-scale, random-crop, flip augmentation over (image, label, weight) triples.

    Decoded images are cached in memory (uint8), which makes epochs after the first cheap.

    Returns per item: image ``(3, S, S)`` float32, label ``(S, S)`` int64 (255 = ignore, also for
    padding), weight ``(S, S)`` float32 (1 without a weights dir), tags ``(C,)`` float32 multi-hot.
    """

    def __init__(self, ds: Dataset, ids: list[str], labels: str | None = None, weights: str | None = None,
                 crop_size: int = 256, scale_range: tuple[float, float] = (0.75, 1.25), augment: bool = True,
                 seed: int = 0):
        self.ds, self.ids = ds, ids
        self.labels = LabelDir(labels).require() if labels else None
        self.weights = WeightsDir(weights).require() if weights else None
        self.crop_size, self.scale_range, self.augment = crop_size, scale_range, augment
        self.cache: dict[str, tuple] = {}
        self.generator = torch.Generator().manual_seed(seed)
        self.tags = ds.tags

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if image_id not in self.cache:
            image = self.ds.load_image(image_id)
            size = image.shape[:2]
            label = (self.labels.read(image_id, self.ds.num_classes, size) if self.labels
                     else self.ds.load_mask(image_id, size))
            weight = self.weights.read(image_id, size).astype(np.float16) if self.weights else None
            self.cache[image_id] = (image, label, weight)
        return self.cache[image_id]

    def __getitem__(self, index: int):
        image_id = self.ids[index]
        image, label, weight = self.load(image_id)
        img = normalise(image)
        lab = torch.from_numpy(label.astype(np.int64))
        wt = torch.from_numpy(weight.astype(np.float32)) if weight is not None else torch.ones(lab.shape)
        if self.augment:
            img, lab, wt = self._augment(img, lab, wt)
        C = self.ds.num_classes
        tags = torch.zeros(C)
        if self.tags is not None and image_id in self.tags:
            tags[self.tags[image_id]] = 1
        else:
            present = lab[lab != IGNORE].unique()
            tags[present] = 1
        return img, lab, wt, tags

    def _rand(self) -> float:
        return float(torch.rand((), generator=self.generator))

    def _augment(self, img, lab, wt):
        lo, hi = self.scale_range
        s = lo + (hi - lo) * self._rand()
        H, W = lab.shape
        h, w = max(1, round(H * s)), max(1, round(W * s))
        img = F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        lab = F.interpolate(lab[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
        wt = F.interpolate(wt[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        S = self.crop_size
        ph, pw = max(0, S - h), max(0, S - w)
        if ph or pw:
            img = F.pad(img, (0, pw, 0, ph))
            lab = F.pad(lab, (0, pw, 0, ph), value=IGNORE)
            wt = F.pad(wt, (0, pw, 0, ph))
            h, w = h + ph, w + pw
        y = int(self._rand() * (h - S + 1))
        x = int(self._rand() * (w - S + 1))
        img, lab, wt = img[:, y:y + S, x:x + S], lab[y:y + S, x:x + S], wt[y:y + S, x:x + S]
        if self._rand() < 0.5:
            img, lab, wt = img.flip(-1), lab.flip(-1), wt.flip(-1)
        return img.contiguous(), lab.contiguous(), wt.contiguous()


def poly_lr(base_lr: float, step: int, total: int, power: float = 0.9) -> float:
    return base_lr * math.pow(max(0.0, 1 - step / max(1, total)), power)
