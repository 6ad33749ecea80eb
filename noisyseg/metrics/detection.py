"""Detection quality: how well flagged pixels and noise scores find the truly wrong labels.

A pixel is *truly noisy* when its noisy label differs from the ground truth; pixels whose ground
truth or noisy label is 255 take no part.
"""

from __future__ import annotations

import numpy as np
import torch

IGNORE = 255
_BINS = 1 << 16


def float16_order_keys(scores: torch.Tensor) -> torch.Tensor:
    """Maps values, rounded to float16, to int64 keys in 0..65535 that sort like the values (NaN excluded)."""
    bits = scores.clamp(-65504, 65504).to(torch.float16).contiguous().view(torch.int16).to(torch.int64) & 0xFFFF
    negative = bits >= 0x8000
    return torch.where(negative, 0xFFFF - bits, bits | 0x8000)


def float16_from_keys(keys: torch.Tensor) -> torch.Tensor:
    """The inverse of ``float16_order_keys``: float32 values of the keys."""
    keys = keys.to(torch.int64)
    bits = torch.where(keys >= 0x8000, keys & 0x7FFF, 0xFFFF - keys)
    return bits.to(torch.int16).view(torch.float16).float()


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
        scores = torch.as_tensor(scores).reshape(-1).float().cpu()
        is_noisy = torch.as_tensor(is_noisy).reshape(-1).bool().cpu()
        finite = torch.isfinite(scores)
        keys = float16_order_keys(scores)
        self.pos += torch.bincount(keys[finite & is_noisy], minlength=_BINS)
        self.neg += torch.bincount(keys[finite & ~is_noisy], minlength=_BINS)

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


class DetectionQuality:
    """Precision, recall and F1 of flagged pixels against the true noise, plus score ranking."""

    def __init__(self):
        self.tp = self.fp = self.fn = self.tn = 0
        self.ranking = ScoreRanking()
        self.has_scores = False

    def update(self, gt, noisy, flagged, scores=None) -> None:
        """gt, noisy: ``(H, W)`` uint8 labels; flagged: ``(H, W)`` bool; scores: optional ``(H, W)``."""
        gt, noisy, flagged = (torch.as_tensor(np.asarray(a)) for a in (gt, noisy, flagged))
        valid = (gt != IGNORE) & (noisy != IGNORE)
        truth = (gt != noisy) & valid
        flagged = flagged.bool() & valid
        self.tp += int((flagged & truth).sum())
        self.fp += int((flagged & ~truth).sum())
        self.fn += int((~flagged & truth).sum())
        self.tn += int((~flagged & ~truth & valid).sum())
        if scores is not None:
            self.has_scores = True
            scores = torch.as_tensor(np.asarray(scores, dtype=np.float32))
            self.ranking.update(scores[valid], truth[valid])

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
