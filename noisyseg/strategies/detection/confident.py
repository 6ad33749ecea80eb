"""confident: confident learning (Northcutt et al.) with per-class thresholds, for pixels.

``fit`` makes one streaming pass over the split being cleaned and computes each class's threshold
t_c = mean self-confidence p_c over the pixels labelled c (at float16 precision, from a histogram
per class). Two rules then flag pixels:

- ``rank`` (default; cleanlab's segmentation rule): the number of label issues N is estimated as
  the number of pixels whose most probable class k is not their label and has p_k >= t_k; the N
  pixels with the lowest self-confidence p_label are flagged, except those whose label is the most
  probable class. The same pass gathers everything this needs in fixed-size float16 histograms (of
  p_label per labelled class, which also ranks self-confidence, and per class k of p_k over the
  pixels predicted k but labelled otherwise), so no pixel is kept and no global sort is done.
- ``joint``: a pixel labelled y is flagged when the most probable class among those with
  p_k >= t_k exists and is not y (the off-diagonal of the confident joint).

Pixels labelled 255 are ignored throughout, unlike cleanlab's segmentation module, which rejects
them. Score: 1 - p_label (self-confidence ranking).
"""

from __future__ import annotations

import math

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.ops.float16_histogram import float16_from_keys, grouped_histograms
from noisyseg.ops import label_confidence
from noisyseg.params import Param
from noisyseg.strategies.detection.base import Detection, DetectionContext, Detector
from noisyseg.strategies.spec import StrategySpec

_TOLERANCE = 1e-6  # p_k >= t_k - tolerance counts as confident, as in cleanlab


def confident_class(probs: torch.Tensor, thresholds: list[float]) -> torch.Tensor:
    """The most probable class ``(B, H, W)`` int64 among those with ``p_c >= thresholds[c]``, -1 where
    none is; ties keep the lower class id. One class plane at a time: an argmax over the strided
    class axis is slower."""
    best_p = torch.full(probs[:, 0].shape, -1.0, device=probs.device)
    best = torch.full(probs[:, 0].shape, -1, dtype=torch.int64, device=probs.device)
    for c, t in enumerate(thresholds):
        p = probs[:, c].float()
        better = (p >= t) & (p > best_p)
        best_p = torch.where(better, p, best_p)
        best.masked_fill_(better, c)
    return best


class ConfidentDetector(Detector):
    def __init__(self, rule: str = "rank"):
        self.rule = rule
        self.thresholds: torch.Tensor | None = None
        self.theta: float | None = None  # rank: flag self-confidence <= theta

    def fit(self, ctx: DetectionContext) -> dict:
        C = ctx.num_classes
        by_label = predicted = None  # (C, 65536) counts on the batches' device, made by the first batch
        for batch in ctx.batches():
            valid = batch.labels != IGNORE_INDEX
            p_label, best, p_best = label_confidence(batch.probs, batch.labels)
            # p_label per labelled class; p_k of the pixels predicted k but labelled otherwise
            by_label = grouped_histograms(p_label, torch.where(valid, batch.labels, 0), C, valid, into=by_label)
            if self.rule == "rank":
                predicted = grouped_histograms(p_best, best, C, valid & (best != batch.labels), into=predicted)
        empty = torch.zeros(C, 1 << 16, dtype=torch.int64)
        by_label = empty if by_label is None else by_label.cpu()
        predicted = empty if predicted is None else predicted.cpu()
        values = float16_from_keys(torch.arange(1 << 16)).double()  # ascending
        counts = by_label.sum(1).double()
        # A class never labelled gets threshold 1: nothing is confidently that class.
        finite = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)  # those bins hold no pixel
        means = (by_label.double() * finite).sum(1) / counts.clamp_min(1)
        self.thresholds = torch.where(counts > 0, means, torch.ones_like(means)).float()
        fitted = {"rule": self.rule, "class_thresholds": [round(float(t), 6) for t in self.thresholds]}
        if self.rule == "rank":
            confident = values[None, :] >= (self.thresholds[:, None].double() - _TOLERANCE)
            issues = int(predicted[confident].sum())
            ranked = torch.cumsum(by_label.sum(0), 0)  # pixels at or below each self-confidence
            if issues == 0:
                self.theta = -math.inf
            else:  # the self-confidence at which the issues-th lowest pixel lies
                key = int(torch.searchsorted(ranked, torch.tensor(issues)).clamp(max=(1 << 16) - 1))
                self.theta = float(values[key])
            fitted |= {"estimated_issues": issues, "self_confidence_threshold": self.theta}
        return fitted

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        if self.thresholds is None:
            raise RuntimeError("confident: call fit() before detect()")
        valid = labels != IGNORE_INDEX
        p_label, best, _ = label_confidence(probs, labels)
        if self.rule == "rank":
            # theta is a float16 value of the histogram; compare at that precision.
            p = p_label if probs.dtype == torch.float16 else p_label.half().float()
            flags = valid & (p <= self.theta) & (best != labels)
        else:
            best = confident_class(probs, self.thresholds.tolist())
            flags = valid & (best >= 0) & (best != labels)
        return Detection(flags, 1.0 - p_label.float())


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
