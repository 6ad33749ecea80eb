"""class-balanced (CBST, Zou et al., ECCV 2018): per class, keep the most confident share of its pixels.

A global confidence threshold selects by a scale that the classes do not share: on street scenes
the road is predicted at 0.99 and a pole at 0.6, so τ = 0.95 keeps road and drops every pole, while
τ = 0 keeps every pixel, including the pole pixels the teacher calls road, and so teaches the
student to miss poles. CBST picks one threshold per class instead: among the pixels whose argmax is
c, the ``keep`` most confident share keeps its label, the rest is ignored. Every predicted class
then contributes the same share of its pixels, and the least sure pixels of the large classes
(often thin objects of another class, or their borders) leave the loss.

The paper computes the thresholds over the whole unlabelled set once per round; online, they are
computed over the batch (the global batch under torchrun: the loop hands every process's images
to the strategy), which is the same estimate from fewer pixels.
"""

from __future__ import annotations

import math

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import ParameterError
from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels, check_probs, require
from noisyseg.strategies.spec import StrategySpec


def class_balanced_labels(probs: torch.Tensor, keep: float = 0.5, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The argmax, kept on the ``keep`` most confident share of each predicted class's pixels.

    Args:
        probs: (B, C, H, W) float probabilities.
        keep: share of each class's pixels to keep, in (0, 1]; a class predicted on n pixels keeps
            ceil(keep * n), more when confidences tie at its threshold.

    Returns:
        (B, H, W) int64 class ids, ``ignore_index`` on the pixels not kept.

    Example (class 0 on three pixels, class 1 on one: each keeps its most confident half, rounded up):
        >>> p0 = torch.tensor([0.9, 0.8, 0.7, 0.4])
        >>> class_balanced_labels(torch.stack([p0, 1 - p0])[None, :, None], 0.5).tolist()
        [[[0, 0, 255, 1]]]
    """
    check_probs(probs, "class_balanced")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"class_balanced: keep must be in (0, 1], got {keep}")
    conf, labels = probs.max(dim=1)
    if keep == 1.0:
        return labels
    out = torch.full_like(labels, ignore_index)
    for c in labels.unique().tolist():
        mine = labels == c
        values = conf[mine]
        kept = math.ceil(keep * values.numel())
        threshold = values.kthvalue(values.numel() - kept + 1).values  # the kept-th largest
        out[mine & (conf >= threshold)] = c
    return out


class ClassBalanced(PseudoLabeler):
    def __init__(self, keep: float = 0.5):
        if not 0.0 < keep <= 1.0:
            raise ParameterError(f"parameter 'keep' of class-balanced: expected a share in (0, 1], found {keep}")
        self.keep = keep

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        probs = require(inputs, "probs", "class-balanced")
        return PseudoLabels(class_balanced_labels(probs, self.keep), probs.float())


SPEC = StrategySpec(
    kind="pseudo-labeling",
    name="class-balanced",
    summary="argmax on the most confident share of each predicted class's pixels, ignore elsewhere (CBST)",
    factory=ClassBalanced,
    params=(Param("keep", float, 0.5, "share of each predicted class's pixels that keeps its label", min=0.0,
                  max=1.0),),
)
