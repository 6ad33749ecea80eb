"""argmax: the baseline pseudo-label, the most probable class, optionally only above a confidence floor."""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels, check_probs, require
from noisyseg.strategies.spec import StrategySpec


def argmax_labels(probs: torch.Tensor, min_confidence: float = 0.0, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Hard labels from probabilities.

    Args:
        probs: (B, C, H, W) float probabilities.
        min_confidence: pixels whose top probability is below this become ``ignore_index``
            (0 keeps every pixel).

    Returns:
        (B, H, W) int64 class ids, ``ignore_index`` where the floor is not met.

    Example:
        >>> argmax_labels(torch.tensor([[[[0.9, 0.4]], [[0.1, 0.6]]]]), 0.7).tolist()
        [[[0, 255]]]
    """
    check_probs(probs, "argmax_labels")
    conf, labels = probs.max(dim=1)
    if min_confidence > 0:
        labels = torch.where(conf >= min_confidence, labels, torch.full_like(labels, ignore_index))
    return labels


class Argmax(PseudoLabeler):
    def __init__(self, min_confidence: float = 0.0):
        self.min_confidence = min_confidence

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        probs = require(inputs, "probs", "argmax")
        return PseudoLabels(argmax_labels(probs, self.min_confidence), probs.float())


SPEC = StrategySpec(
    kind="pseudo-labeling",
    name="argmax",
    summary="most probable class per pixel, ignore below an optional confidence floor (baseline)",
    factory=Argmax,
    params=(Param("min_confidence", float, 0.0, "ignore pixels whose top probability is below this", min=0.0, max=1.0),),
)
