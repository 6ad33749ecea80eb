"""confident: confident learning (Northcutt et al.) with per-class thresholds, for pixels.

``fit`` makes one streaming pass over the split being cleaned and computes each class's threshold
t_c = mean self-confidence p_c over the pixels labelled c. Two rules then flag pixels:

- ``rank`` (default; cleanlab's segmentation rule): the number of label issues N is estimated as
  the number of pixels whose most probable class k is not their label and has p_k >= t_k; the N
  pixels with the lowest self-confidence p_label are flagged, except those whose label is the most
  probable class. The same pass gathers everything this needs in fixed-size float16 histograms (a
  self-confidence histogram, and per class k one of p_k over the pixels predicted k but labelled
  otherwise), so no pixel is kept and no global sort is done.
- ``joint``: a pixel labelled y is flagged when the most probable class among those with
  p_k >= t_k exists and is not y (the off-diagonal of the confident joint).

Pixels labelled 255 are ignored throughout, unlike cleanlab's segmentation module, which rejects
them. Score: 1 - p_label (self-confidence ranking).
"""

from __future__ import annotations

import math

import torch

from noisyseg.metrics.detection import float16_from_keys, grouped_histograms
from noisyseg.strategies.detection.base import Detection, DetectionContext, Detector, label_probability
from noisyseg.strategies.spec import Param, StrategySpec

_TOLERANCE = 1e-6  # p_k >= t_k - tolerance counts as confident, as in cleanlab


def most_probable(probs: torch.Tensor, thresholds: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The most probable class ``(B, H, W)`` int64 and its probability float32, among the classes with
    ``p_c >= thresholds[c]`` when given (-1 and -1.0 where none is); ties keep the lower class id, as
    argmax does. Works one class plane at a time: an argmax over the strided class axis is slower."""
    if thresholds is None:  # max first (vectorised), then the lowest class that attains it
        best_p = probs.amax(1)
        best = torch.empty(best_p.shape, dtype=torch.int64, device=probs.device)
        for c in reversed(range(probs.shape[1])):
            best.masked_fill_(probs[:, c] == best_p, c)
        return best, best_p.float()
    best_p = torch.full(probs[:, 0].shape, -1.0, device=probs.device)
    best = torch.full(probs[:, 0].shape, -1, dtype=torch.int64, device=probs.device)
    for c, t in enumerate(thresholds):
        p = probs[:, c].float()
        better = (p >= t) & (p > best_p)
        best_p = torch.where(better, p, best_p)
        best.masked_fill_(better, c)
    return best, best_p


class ConfidentDetector(Detector):
    def __init__(self, rule: str = "rank"):
        self.rule = rule
        self.thresholds: torch.Tensor | None = None
        self.theta: float | None = None  # rank: flag self-confidence <= theta

    def fit(self, ctx: DetectionContext) -> dict:
        C = ctx.num_classes
        sums = torch.zeros(C, dtype=torch.float64)
        counts = torch.zeros(C, dtype=torch.float64)
        self_confidence = torch.zeros(1 << 16, dtype=torch.int64)
        predicted = torch.zeros(C, 1 << 16, dtype=torch.int64)  # p_k of pixels predicted k, labelled otherwise
        for batch in ctx.batches():
            p, valid = label_probability(batch.probs, batch.labels)
            y = torch.where(valid, batch.labels, C).reshape(-1)  # bin C collects the ignored pixels
            sums += torch.bincount(y, weights=p.reshape(-1).double(), minlength=C + 1).cpu()[:C]
            counts += torch.bincount(y, minlength=C + 1).double().cpu()[:C]
            if self.rule == "rank":
                best, best_p = most_probable(batch.probs)
                self_confidence += grouped_histograms(p, torch.zeros_like(best), 1, valid)[0]
                predicted += grouped_histograms(best_p, best, C, valid & (best != batch.labels))
        # A class never labelled gets threshold 1: nothing is confidently that class.
        self.thresholds = torch.where(counts > 0, sums / counts.clamp_min(1), torch.ones_like(sums)).float()
        fitted = {"rule": self.rule, "class_thresholds": [round(float(t), 6) for t in self.thresholds]}
        if self.rule == "rank":
            values = float16_from_keys(torch.arange(1 << 16))  # ascending
            confident = values[None, :] >= (self.thresholds[:, None] - _TOLERANCE)
            issues = int(predicted[confident].sum())
            ranked = torch.cumsum(self_confidence, 0)
            if issues == 0:
                self.theta = -math.inf
            else:  # the self-confidence at which the issues-th lowest pixel lies
                self.theta = float(values[int(torch.searchsorted(ranked, torch.tensor(issues)).clamp(max=(1 << 16) - 1))])
            fitted |= {"estimated_issues": issues, "self_confidence_threshold": self.theta}
        return fitted

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        if self.thresholds is None:
            raise RuntimeError("confident: call fit() before detect()")
        p_label, valid = label_probability(probs, labels)
        if self.rule == "rank":
            best, _ = most_probable(probs)
            # theta is a float16 value of the histogram; compare at that precision.
            flags = valid & (p_label.half().float() <= self.theta) & (best != labels)
        else:
            best, _ = most_probable(probs, self.thresholds.tolist())
            flags = valid & (best >= 0) & (best != labels)
        return Detection(flags, 1.0 - p_label)


SPEC = StrategySpec(
    kind="detection",
    name="confident",
    summary="confident learning: per-class thresholds from mean self-confidence, ignore index respected",
    factory=ConfidentDetector,
    params=(
        Param("rule", str, "rank", "rank: flag the estimated number of issues by lowest self-confidence "
              "(cleanlab's rule); joint: flag the off-diagonal of the confident joint", choices=("rank", "joint")),
    ),
)
