"""entropy (U2PL, Wang et al.): flag the share α of pixels whose prediction entropy is highest.

The threshold is the (1 - α) quantile of entropy over the valid pixels of each image
(``scope=image``) or of the whole batch (``scope=batch``, as U2PL does online); pixels strictly
above it are flagged.
"""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.detection.base import Detection, Detector
from noisyseg.strategies.pseudo_labeling.entropy_filter import reliable_mask
from noisyseg.strategies.spec import StrategySpec


class EntropyDetector(Detector):
    def __init__(self, alpha: float = 0.2, scope: str = "image"):
        self.alpha = alpha
        self.scope = scope

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        # The same split as U2PL's pseudo-labels: flagged = valid and not reliable.
        valid = labels != IGNORE_INDEX
        reliable, entropy = reliable_mask(probs, self.alpha, valid, self.scope)
        return Detection(valid & ~reliable, entropy)


SPEC = StrategySpec(
    kind="detection",
    name="entropy",
    summary="flag the share alpha of pixels with the highest prediction entropy (U2PL's unreliable pixels)",
    factory=EntropyDetector,
    params=(
        Param("alpha", float, 0.2, "share of valid pixels to flag", min=0.0, max=1.0),
        Param("scope", str, "image", "quantile over each image or the whole batch", choices=("image", "batch")),
    ),
)
