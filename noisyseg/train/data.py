"""Training samples: image, labels (a label dir or GT masks), optional per-pixel weights, augmented."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.io import Dataset, LabelDir, WeightsDir

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def to_unit(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)


NORMALISATIONS = ("imagenet", "tf", "image")


def normalise(image: np.ndarray | torch.Tensor, mode: str = "imagenet") -> torch.Tensor:
    """``(H, W, 3)`` uint8, or ``(..., 3, H, W)`` float in [0, 1] -> float32 ``(..., 3, H, W)``.

    ``imagenet``: the fixed ImageNet channel mean/std. ``tf``: 2x - 1, i.e. (v - 127.5) / 127.5 on
    0-255 values, what TensorFlow-trained weights (EfficientNet-Lite) expect. ``image``: each
    image's own channel mean and std, which removes global exposure and colour-cast differences
    between images."""
    t = image if isinstance(image, torch.Tensor) else to_unit(image)
    if mode == "imagenet":
        return (t - MEAN) / STD
    if mode == "tf":
        return t * 2 - 1
    if mode == "image":
        mean = t.mean((-2, -1), keepdim=True)
        std = t.std((-2, -1), keepdim=True)
        return (t - mean) / std.clamp_min(1e-3)
    raise ValueError(f"normalise: mode must be one of {NORMALISATIONS}, got {mode!r}")


def rescale_image(image: torch.Tensor, scale: float) -> torch.Tensor:
    """``(..., 3, H, W)`` float -> ``(..., 3, round(H*scale), round(W*scale))``, bilinear with antialias."""
    if scale == 1.0:
        return image
    H, W = image.shape[-2:]
    size = (max(1, round(H * scale)), max(1, round(W * scale)))
    batch = image if image.dim() == 4 else image[None]
    out = F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
    return out if image.dim() == 4 else out[0]


def colour_jitter(img: torch.Tensor, strength: float, rand) -> torch.Tensor:
    """Random brightness, contrast, saturation and gamma on a ``(3, H, W)`` image in [0, 1].

    Each factor is drawn from ``[1 - strength, 1 + strength]`` by ``rand()`` (uniform in [0, 1));
    lighting changes between sequences are what a small clean set most often fails to cover."""
    def factor() -> float:
        return 1 + strength * (2 * rand() - 1)

    img = img * factor()                                             # brightness
    mean = img.mean()
    img = (img - mean) * factor() + mean                             # contrast
    grey = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
    img = (img - grey) * factor() + grey                             # saturation
    return img.clamp_(0, 1).pow_(factor())                           # gamma


def _dirs(source: str | dict | None, kind):
    """One dir or {image id: dir} -> a function image id -> a checked ``kind`` dir or None."""
    if not isinstance(source, dict):
        single = kind(source).require() if source else None
        return lambda image_id: single
    opened = {path: kind(path).require() for path in set(source.values()) if path}
    return lambda image_id: opened.get(source.get(image_id))


class SegmentationSamples(torch.utils.data.Dataset):
    """Random-scale, random-crop, flip augmentation over (image, label, weight) triples.

    Images (and labels, weights) are first resized by ``input_scale`` (nearest for labels); a run
    trained at a reduced scale predicts at that scale too. ``jitter`` > 0 adds colour jitter
    (:func:`colour_jitter`) to the whole image, which is then normalised (``normalisation``, see
    :func:`normalise`) before scaling, cropping (padding with 0, the mean) and flipping. Decoded images are cached in memory (uint8), which makes epochs after
    the first cheap.

    Returns per item: image ``(3, S, S)`` float32, label ``(S, S)`` int64 (255 = ignore, also for
    padding), weight ``(S, S)`` float32 (1 without a weights dir), tags ``(C,)`` float32 multi-hot.
    """

    def __init__(self, ds: Dataset, ids: list[str], labels: str | dict | None = None,
                 weights: str | dict | None = None, crop_size: int = 256,
                 scale_range: tuple[float, float] = (0.75, 1.25), augment: bool = True, seed: int = 0,
                 input_scale: float = 1.0, jitter: float = 0.0, normalisation: str = "imagenet"):
        """``labels`` / ``weights``: one dir for every image, or a dict image id -> dir; None (or an
        id the dict maps to None) means the dataset's mask / weight 1."""
        self.ds, self.ids = ds, ids
        self.labels = _dirs(labels, LabelDir)
        self.weights = _dirs(weights, WeightsDir)
        self.crop_size, self.scale_range, self.augment = crop_size, scale_range, augment
        self.input_scale, self.jitter, self.normalisation = input_scale, jitter, normalisation
        self.cache: dict[str, tuple] = {}
        self.generator = torch.Generator().manual_seed(seed)
        self.tags = ds.tags

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if image_id not in self.cache:
            image = self.ds.load_image(image_id)
            size = image.shape[:2]
            labels, weights = self.labels(image_id), self.weights(image_id)
            label = labels.read(image_id, self.ds.num_classes, size) if labels else self.ds.load_mask(image_id, size)
            weight = weights.read(image_id, size).astype(np.float16) if weights else None
            if self.input_scale != 1.0:
                image = rescale_image(to_unit(image), self.input_scale)
                h, w = image.shape[-2:]
                image = image.mul(255).round_().byte().permute(1, 2, 0).numpy()
                label = F.interpolate(torch.from_numpy(label[None, None].astype(np.float32)), size=(h, w),
                                      mode="nearest")[0, 0].numpy().astype(label.dtype)
                if weight is not None:
                    weight = F.interpolate(torch.from_numpy(weight[None, None].astype(np.float32)), size=(h, w),
                                           mode="bilinear", align_corners=False)[0, 0].numpy().astype(np.float16)
            self.cache[image_id] = (image, label, weight)
        return self.cache[image_id]

    def __getitem__(self, index: int):
        image_id = self.ids[index]
        image, label, weight = self.load(image_id)
        img = to_unit(image)
        lab = torch.from_numpy(label.astype(np.int64))
        wt = torch.from_numpy(weight.astype(np.float32)) if weight is not None else torch.ones(lab.shape)
        if self.augment and self.jitter > 0:
            img = colour_jitter(img, self.jitter, self._rand)
        img = normalise(img, self.normalisation)
        if self.augment:
            img, lab, wt = self._augment(img, lab, wt)
        C = self.ds.num_classes
        tags = torch.zeros(C)
        if self.tags is not None and image_id in self.tags:
            tags[self.tags[image_id]] = 1
        else:
            present = lab[lab != IGNORE_INDEX].unique()
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
            lab = F.pad(lab, (0, pw, 0, ph), value=IGNORE_INDEX)
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
