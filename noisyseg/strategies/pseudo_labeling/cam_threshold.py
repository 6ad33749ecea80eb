"""cam-threshold: pseudo-labels from class activation maps and image tags by two thresholds.

Yi et al.'s CAM baseline ("Learning from Pixel-Level Label Noise") and U2PL's weakly supervised β:
each present class's CAM is divided by its maximum over the image; a pixel whose best present class
scores above ``fg`` takes that class, a pixel where every present class scores below ``bg`` is
background, the rest is ignored.

"Background" is a class id (``background``, default 0, as in PASCAL VOC). Its own CAM is never
used: background is where no tagged foreground class fires. Datasets without a background class
(CamVid: every class is a "thing" or "stuff" of its own) pass ``background=None``: then every
tagged class competes for ``fg`` and the low-score pixels are ignored, since there is no class to
give them.
"""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.models.cam import normalise_cams  # also importable from here, as before
from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels, require
from noisyseg.strategies.spec import StrategySpec


def cam_threshold(cams: torch.Tensor, tags: torch.Tensor, fg: float = 0.3, bg: float = 0.05,
                  background: int | None = 0, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Hard labels from CAMs and image tags.

    Args:
        cams: (B, C, H, W) float activation maps (any non-negative scale; normalised here).
        tags: (B, C) bool, class present in the image. The background class's tag is ignored.
        fg: a pixel whose best present class has normalised CAM > fg takes that class.
        bg: a pixel where all present classes have normalised CAM < bg becomes ``background``
            (ignored when ``background`` is None).
        background: class id of the background class, or None for datasets without one.

    Returns:
        (B, H, W) int64 class ids, ``ignore_index`` for undecided pixels.

    Example:
        >>> cams = torch.zeros(1, 3, 1, 3); cams[0, 1] = torch.tensor([[1.0, 0.2, 0.0]])
        >>> cam_threshold(cams, torch.tensor([[False, True, False]])).tolist()
        [[[1, 255, 0]]]
    """
    if cams.dim() != 4:
        raise ValueError(f"cam_threshold: cams must be (B, C, H, W), got {tuple(cams.shape)}")
    B, C = cams.shape[:2]
    if tags.shape != (B, C):
        raise ValueError(f"cam_threshold: tags must be (B, C) = ({B}, {C}), got {tuple(tags.shape)}")
    if not 0 <= bg <= fg:
        raise ValueError(f"cam_threshold: expected 0 <= bg <= fg, got bg={bg}, fg={fg}")
    if background is not None and not 0 <= background < C:
        raise ValueError(f"cam_threshold: background must be a class id in 0..{C - 1} or None, got {background}")
    present = tags.bool().clone()
    if background is not None:
        present[:, background] = False
    norm = normalise_cams(cams, present)
    # Absent classes get -1 so they never win the argmax nor block the background test.
    scores = torch.where(present[:, :, None, None], norm, torch.full_like(norm, -1.0))
    best, best_class = scores.max(dim=1)
    labels = torch.full_like(best_class, ignore_index)
    labels = torch.where(best > fg, best_class, labels)
    if background is not None:
        labels = torch.where(best < bg, torch.full_like(labels, background), labels)
    return labels


class CamThreshold(PseudoLabeler):
    needs = ("cams", "tags")

    def __init__(self, fg: float = 0.3, bg: float = 0.05, background: int | str = 0):
        self.fg, self.bg = fg, bg
        self.background = None if background == "none" else int(background)

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        cams = require(inputs, "cams", "cam-threshold")
        tags = require(inputs, "tags", "cam-threshold")
        return PseudoLabels(cam_threshold(cams, tags, self.fg, self.bg, self.background))


SPEC = StrategySpec(
    kind="pseudo-labeling",
    name="cam-threshold",
    summary="CAM above fg takes the best tagged class, below bg everywhere is background, else ignore",
    factory=CamThreshold,
    params=(
        Param("fg", float, 0.3, "foreground threshold on max-normalised CAMs", min=0.0, max=1.0),
        Param("bg", float, 0.05, "background threshold on max-normalised CAMs", min=0.0, max=1.0),
        Param("background", int, 0, "background class id, or 'none' for datasets without one", min=0, max=254,
              special=("none",)),
    ),
)
