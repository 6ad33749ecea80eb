"""urn (URN, Li et al.) as detection: flag the pixels whose URN hard weight is t, i.e. 1 - U < t.

The score is the normalised uncertainty U. The present classes are the noisy label's (as the
paper's pseudo-mask). The detection interface passes probs and labels, not the image, so the
CRF's pairwise term here is the smoothness (position-only) kernel; the ``weight`` command and
training, which have the image, also use the appearance kernel.
"""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.strategies.detection.base import Detection, Detector
from noisyseg.strategies.spec import StrategySpec
from noisyseg.strategies.weighting.urn import PARAMS, Urn


class UrnDetector(Detector):
    def __init__(self, **params):
        self.urn = Urn(mode="hard", **params)

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        u = self.urn.uncertainty(probs, labels, None)
        flags = (1.0 - u < self.urn.t) & (labels != IGNORE_INDEX)
        return Detection(flags, u.float())


SPEC = StrategySpec(
    kind="detection",
    name="urn",
    summary="flag pixels where URN's response-scaling uncertainty gives the floor weight t (1 - U < t)",
    factory=UrnDetector,
    params=PARAMS,
)
