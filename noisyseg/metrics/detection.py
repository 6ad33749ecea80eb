"""Detection quality: how well flagged pixels and noise scores find the truly wrong labels.

A pixel is *truly noisy* when its noisy label differs from the ground truth; pixels whose ground
truth or noisy label is 255 take no part.
"""

from __future__ import annotations

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.ops.float16_histogram import BINS as _BINS
from noisyseg.ops.float16_histogram import split_histograms
# The other float16 histogram helpers live with their op too; they stay importable from here.
from noisyseg.ops.float16_histogram import (float16_from_keys, float16_histogram_, float16_order_keys,  # noqa: F401
                                            grouped_histograms)


class ScoreRanking:
    """Exact AUROC and average precision of a noise score, streamed with bounded memory.

    Scores are compared at float16 precision (the precision score maps are stored in): each
    update bins them into a 65536-entry histogram per class (noisy / clean), which is exact for
    float16 values and never keeps pixels around.
    """

    def __init__(self):
        self.pos = torch.zeros(_BINS, dtype=torch.int64)
        self.neg = torch.zeros(_BINS, dtype=torch.int64)

    def update(self, scores, is_noisy) -> None:
        """scores: ``(...)`` float, higher = more likely noisy; is_noisy: same-shape bool."""
        self.add(torch.as_tensor(scores), torch.as_tensor(is_noisy))

    def add(self, scores: torch.Tensor, is_noisy: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """Like :meth:`update` on tensors (any device), counting only ``valid`` pixels when given."""
        neg, pos = split_histograms(scores, is_noisy, valid)
        self.neg += neg
        self.pos += pos

    def auroc(self) -> float:
        """Area under the ROC curve; ties count one half (Mann-Whitney U)."""
        pos, neg = self.pos.double(), self.neg.double()
        n_pos, n_neg = float(pos.sum()), float(neg.sum())
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        neg_below = torch.cumsum(neg, 0) - neg
        return float(((pos * (neg_below + 0.5 * neg)).sum()) / (n_pos * n_neg))

    def average_precision(self) -> float:
        """Σ_k (R_k - R_{k-1}) P_k over thresholds at each distinct score, highest first."""
        pos, neg = self.pos.double().flip(0), self.neg.double().flip(0)
        n_pos = float(pos.sum())
        if n_pos == 0:
            return float("nan")
        tp, fp = torch.cumsum(pos, 0), torch.cumsum(neg, 0)
        at = pos > 0
        precision = tp[at] / (tp[at] + fp[at])
        return float((pos[at] / n_pos * precision).sum())

    def precision_recall_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(recall, precision)`` float64 arrays, one point per distinct score (highest first) at
        which a truly noisy pixel lies: flagging every pixel scored at least that high."""
        pos, neg = self.pos.double().flip(0), self.neg.double().flip(0)
        tp, fp = torch.cumsum(pos, 0), torch.cumsum(neg, 0)
        at = pos > 0
        n_pos = float(pos.sum())
        if n_pos == 0:
            return np.zeros(0), np.zeros(0)
        return (tp[at] / n_pos).numpy(), (tp[at] / (tp[at] + fp[at])).numpy()


class DetectionQuality:
    """Precision, recall and F1 of flagged pixels against the true noise, plus score ranking."""

    def __init__(self):
        self.tp = self.fp = self.fn = self.tn = 0
        self.ranking = ScoreRanking()
        self.has_scores = False

    def update(self, gt, noisy, flagged, scores=None) -> None:
        """gt, noisy: ``(...)`` integer labels (255 = none); flagged: same-shape bool; scores: optional
        same-shape float. Arrays or tensors; a whole batch ``(B, H, W)`` at once is fastest."""
        gt, noisy, flagged = (a if torch.is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))
                              for a in (gt, noisy, flagged))
        valid = (gt != IGNORE_INDEX) & (noisy != IGNORE_INDEX)
        truth = gt != noisy
        # One bincount: 0 = tn, 1 = fp, 2 = fn, 3 = tp, 4 = not valid.
        code = torch.where(valid, truth.long() * 2 + flagged.bool().long(), 4)
        tn, fp, fn, tp, _ = torch.bincount(code.reshape(-1), minlength=5).tolist()
        self.tp, self.fp, self.fn, self.tn = self.tp + tp, self.fp + fp, self.fn + fn, self.tn + tn
        if scores is not None:
            self.has_scores = True
            scores = scores if torch.is_tensor(scores) else torch.from_numpy(np.asarray(scores, dtype=np.float32))
            self.ranking.add(scores, truth, valid)

    def add_counts(self, tp: int, fp: int, fn: int, tn: int) -> None:
        """Adds pixel counts found elsewhere (flagged and truly noisy, flagged and right, ...)."""
        self.tp, self.fp, self.fn, self.tn = self.tp + tp, self.fp + fp, self.fn + fn, self.tn + tn

    def add_scores(self, scores: torch.Tensor, is_noisy: torch.Tensor, valid: torch.Tensor) -> None:
        """Adds noise scores to the ranking (AUROC, AP): tensors of one shape, ``valid`` the pixels
        that count."""
        self.has_scores = True
        self.ranking.add(scores, is_noisy, valid)

    def summary(self) -> dict:
        flagged = self.tp + self.fp
        noisy = self.tp + self.fn
        precision = self.tp / flagged if flagged else float("nan")
        recall = self.tp / noisy if noisy else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if flagged and noisy and (precision + recall) else 0.0
        total = self.tp + self.fp + self.fn + self.tn
        out = {"precision": precision, "recall": recall, "f1": f1,
               "flagged_share": flagged / total if total else float("nan"),
               "noise_rate": noisy / total if total else float("nan")}
        if self.has_scores:
            out["auroc"] = self.ranking.auroc()
            out["average_precision"] = self.ranking.average_precision()
        return out
