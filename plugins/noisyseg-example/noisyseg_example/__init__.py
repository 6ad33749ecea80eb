"""noisyseg-example: a third-party plugin that adds the detection strategy ``margin``.

``margin`` flags a pixel when the model's best class beats the pixel's label by more than
``margin`` in probability: p_best - p_label > margin (both from ``noisyseg.ops.label_confidence``);
the score is that gap, 0 on ignored (255) pixels. Installed, it is found through the
``noisyseg`` entry-point group; nothing in noisyseg names it.
"""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.hookspecs import hookimpl
from noisyseg.ops import label_confidence
from noisyseg.strategies.detection import Detection, Detector
from noisyseg.strategies.spec import Param, StrategySpec

__version__ = "0.1.0"


class MarginDetector(Detector):
    def __init__(self, margin: float = 0.5):
        self.margin = margin

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        valid = labels != IGNORE_INDEX
        conf = label_confidence(probs, labels.long())  # p_label, best class and p_best in one pass
        gap = torch.where(valid, conf.p_best.float() - conf.p_label.float(), 0.0)
        return Detection(valid & (gap > self.margin), gap)


@hookimpl
def noisyseg_strategies():
    return [StrategySpec(
        kind="detection",
        name="margin",
        summary="flag pixels whose label trails the best class by more than a probability margin",
        factory=MarginDetector,
        params=(Param("margin", float, 0.5, "probability gap p_best - p_label above which a pixel is flagged", min=0.0, max=1.0),),
    )]
