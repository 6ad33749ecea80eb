"""confidence: the top class probability as the pixel's weight (URN's ablation baseline)."""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.spec import StrategySpec
from noisyseg.strategies.weighting.base import WeightInputs, Weighter


def confidence_weights(probs: torch.Tensor, labels: torch.Tensor | None = None, of_label: bool = False,
                       floor: float = 0.0) -> torch.Tensor:
    """Per-pixel weights from confidence.

    Args:
        probs: (B, C, H, W) float probabilities.
        labels: optional (B, H, W) int64 ids (255 = ignore); used with ``of_label``.
        of_label: weight = p of the pixel's label instead of max_c p_c (0 where ignored).
        floor: lower bound of the weights.

    Returns:
        (B, H, W) float32 in [floor, 1].
    """
    if probs.dim() != 4:
        raise ValueError(f"confidence_weights: probs must be (B, C, H, W), got {tuple(probs.shape)}")
    if of_label:
        if labels is None:
            raise ValueError("confidence_weights: of_label needs labels")
        valid = labels != IGNORE_INDEX
        w = probs.float().gather(1, torch.where(valid, labels, torch.zeros_like(labels))[:, None]).squeeze(1)
        w = torch.where(valid, w, torch.zeros_like(w))
    else:
        w = probs.float().amax(dim=1)
    return w.clamp(min=floor, max=1.0)


class Confidence(Weighter):
    def __init__(self, of_label: bool = False, floor: float = 0.0):
        self.of_label, self.floor = of_label, floor
        self.needs = ("probs", "labels") if of_label else ("probs",)

    def weigh(self, inputs: WeightInputs) -> torch.Tensor:
        return confidence_weights(inputs.probs, inputs.labels, self.of_label, self.floor)


SPEC = StrategySpec(
    kind="weighting",
    name="confidence",
    summary="weight = the top class probability (or the label's probability), URN's ablation baseline",
    factory=Confidence,
    params=(
        Param("of_label", bool, False, "use the probability of the pixel's label instead of the max"),
        Param("floor", float, 0.0, "lower bound of the weights", min=0.0, max=1.0),
    ),
)
