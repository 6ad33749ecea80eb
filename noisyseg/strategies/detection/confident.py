"""confident: confident-learning style detection with per-class thresholds.

``fit`` computes each class's threshold t_c = mean self-confidence p_c over the pixels labelled c
in the split being cleaned (one streaming pass). A pixel labelled y is flagged when some class k
has p_k >= t_k and the most probable such class is not y (the off-diagonal of the confident
joint). Pixels labelled 255 are ignored throughout, unlike cleanlab's segmentation module, which
rejects them. Score: 1 - p_y (self-confidence ranking).
"""

from __future__ import annotations

import torch

from noisyseg.strategies.detection.base import Detection, DetectionContext, Detector, label_probability
from noisyseg.strategies.spec import StrategySpec


class ConfidentDetector(Detector):
    def __init__(self):
        self.thresholds: torch.Tensor | None = None

    def fit(self, ctx: DetectionContext) -> dict:
        C = ctx.num_classes
        sums = torch.zeros(C, dtype=torch.float64)
        counts = torch.zeros(C, dtype=torch.float64)
        for batch in ctx.batches():
            p, valid = label_probability(batch.probs, batch.labels)
            y = torch.where(valid, batch.labels, C).reshape(-1)  # bin C collects the ignored pixels
            sums += torch.bincount(y, weights=p.reshape(-1).double(), minlength=C + 1).cpu()[:C]
            counts += torch.bincount(y, minlength=C + 1).double().cpu()[:C]
        # A class never labelled gets threshold 1: nothing is confidently that class.
        self.thresholds = torch.where(counts > 0, sums / counts.clamp_min(1), torch.ones_like(sums)).float()
        return {"class_thresholds": [round(float(t), 6) for t in self.thresholds]}

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        if self.thresholds is None:
            raise RuntimeError("confident: call fit() before detect()")
        # The most probable class among those at or above their threshold, one class plane at a
        # time (ties keep the lower class id, as argmax does); -1 where no class is above.
        thresholds = self.thresholds.tolist()
        best_p = torch.full(labels.shape, -1.0, device=probs.device)
        best = torch.full(labels.shape, -1, dtype=torch.int64, device=probs.device)
        for c, t in enumerate(thresholds):
            p = probs[:, c].float()
            better = (p >= t) & (p > best_p)
            best_p = torch.where(better, p, best_p)
            best.masked_fill_(better, c)
        p_label, valid = label_probability(probs, labels)
        flags = valid & (best >= 0) & (best != labels)
        return Detection(flags, 1.0 - p_label)


SPEC = StrategySpec(
    kind="detection",
    name="confident",
    summary="confident learning: per-class thresholds from mean self-confidence, ignore index respected",
    factory=ConfidentDetector,
)
