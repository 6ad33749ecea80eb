"""entropy (U2PL, seed 002): flag the share α of pixels whose prediction entropy is highest.

The threshold is the (1 - α) quantile of entropy over the valid pixels of each image
(``scope=image``) or of the whole batch (``scope=batch``, as U2PL does online); pixels strictly
above it are flagged.
"""

from __future__ import annotations

import torch

from noisyseg.ops.entropy_rank import entropy_rank
from noisyseg.strategies.detection.base import Detection, Detector, IGNORE
from noisyseg.strategies.spec import Param, StrategySpec


class EntropyDetector(Detector):
    def __init__(self, alpha: float = 0.2, scope: str = "image"):
        self.alpha = alpha
        self.scope = scope

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        valid = labels != IGNORE
        if self.scope == "batch":
            entropy, threshold, _ = entropy_rank(probs, is_logits=False, valid=valid, quantile=1 - self.alpha)
            flags = valid & (entropy > threshold)
        else:
            parts = [entropy_rank(probs[i:i + 1], is_logits=False, valid=valid[i:i + 1], quantile=1 - self.alpha)
                     for i in range(probs.shape[0])]
            entropy = torch.cat([p.entropy for p in parts])
            thresholds = torch.stack([p.threshold for p in parts]).view(-1, 1, 1)
            flags = valid & (entropy > thresholds)
        return Detection(flags, entropy)


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
