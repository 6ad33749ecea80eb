"""CAM-like masks: low resolution, over-smoothed, with shrunken foreground."""

from __future__ import annotations

import numpy as np

from noisyseg.constants import IGNORE_INDEX


def cam_like(label: np.ndarray, rng: np.random.Generator, num_classes: int, scale: int = 8,
             sigma: float = 1.5, shrink: float = 0.75) -> np.ndarray:
    """Renders the mask as a class-activation map would see it.

    The one-hot mask is average-pooled by ``scale``, blurred with a Gaussian of ``sigma`` low-res
    cells, upsampled bilinearly and argmax-ed, with every class but the image's largest one
    scaled by a random factor around ``shrink`` so that foreground retreats from its borders.
    Ignore pixels stay ignore.
    """
    import torch  # here, not at module level: the CLI imports the noise specs for --help
    import torch.nn.functional as F

    H, W = label.shape
    valid = label != IGNORE_INDEX
    onehot = torch.zeros(num_classes, H, W)
    idx = torch.from_numpy(np.where(valid, label, 0).astype(np.int64))
    onehot.scatter_(0, idx[None], torch.from_numpy(valid)[None].float())
    low = F.avg_pool2d(onehot[None], scale, ceil_mode=True)
    radius = max(1, int(round(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-x**2 / (2 * sigma**2))
    g /= g.sum()
    low = F.conv2d(F.pad(low, (radius, radius, 0, 0), mode="replicate"), g.view(1, 1, 1, -1).expand(num_classes, 1, 1, -1), groups=num_classes)
    low = F.conv2d(F.pad(low, (0, 0, radius, radius), mode="replicate"), g.view(1, 1, -1, 1).expand(num_classes, 1, -1, 1), groups=num_classes)
    score = F.interpolate(low, size=(H, W), mode="bilinear", align_corners=False)[0]
    areas = onehot.sum((1, 2))
    factor = torch.full((num_classes,), 1.0)
    jitter = torch.from_numpy(rng.uniform(-0.1, 0.1, size=num_classes).astype(np.float32))
    factor = (shrink + jitter).clamp(0.05, 1.0)
    factor[int(areas.argmax())] = 1.0
    out = (score * factor[:, None, None]).argmax(0).numpy().astype(np.uint8)
    out[~valid] = IGNORE_INDEX
    return out
