"""cleanlab's rule for pixel label issues (``cleanlab.segmentation.filter.find_label_issues``).

Over the pixels whose label is a class (255 and other ignored values take no part):

1. confident thresholds: ``t_k`` = mean own-label probability of the pixels labelled ``k``; a class
   no pixel carries gets 0; every ``t_k`` is then clipped to at least 2e-6;
2. the number of issues ``N``: pixels whose most probable class ``k`` is not their label and has
   ``p_k >= t_k - 1e-6``;
3. the ``N`` pixels of lowest own-label probability are the candidates, and every candidate whose
   label is not its most probable class is an issue.

A :class:`Cutoff` says which pixels step 3 takes: those with own-label probability below
``theta``, and the first ``ties`` at exactly ``theta`` in pixel order (image by image, row-major).
cleanlab breaks those ties with an unstable argsort, so only inputs without ties at the cutoff
(continuous probabilities) can be compared flag for flag.

:class:`IssueRule` finds the cutoff in one streaming pass with bounded memory, exactly for float16
probabilities (the probs dir's dtype); :func:`cutoff_from_values` does it from values in memory
(exactly for any dtype).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from noisyseg.ops.float16_histogram import BINS as _BINS
from noisyseg.ops.float16_histogram import float16_from_keys, grouped_histograms

THRESHOLD_FLOOR = 2e-6  # cleanlab's CONFIDENT_THRESHOLDS_LOWER_BOUND
TOLERANCE = 1e-6  # cleanlab's FLOATING_POINT_COMPARISON


def confident_thresholds(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``(C,)`` float64 thresholds from per-class sums and counts of own-label probability."""
    sums, counts = sums.double().cpu(), counts.double().cpu()
    means = torch.where(counts > 0, sums / counts.clamp_min(1), torch.zeros_like(sums))
    return means.clamp_min(THRESHOLD_FLOOR)


def count_issues(thresholds: torch.Tensor, best: torch.Tensor, p_best: torch.Tensor, labels: torch.Tensor,
                 valid: torch.Tensor) -> int:
    """Step 2 for one batch: pixels ``(B, H, W)`` whose most probable class ``best`` (probability
    ``p_best``) is not their label and reaches its class's threshold (less the tolerance)."""
    limit = (thresholds - TOLERANCE).to(p_best.device)[best]
    return int((valid & (best != labels) & (p_best.double() >= limit)).sum())


@dataclass
class Cutoff:
    """Step 3's candidates: own-label probability below ``theta``, plus the first ``ties`` pixels
    at exactly ``theta`` in pixel order. ``issues`` is N; ``thresholds`` the ``(C,)`` t_k."""

    issues: int
    theta: float
    ties: int
    thresholds: list[float]

    def flagger(self) -> "Flagger":
        return Flagger(self)


class Flagger:
    """Applies a :class:`Cutoff` to batches given in pixel order (each image once, in order)."""

    def __init__(self, cutoff: Cutoff):
        self.theta = cutoff.theta
        self.ties_left = cutoff.ties

    def __call__(self, p_label: torch.Tensor, valid: torch.Tensor, disagrees: torch.Tensor) -> torch.Tensor:
        """Issues ``(B, H, W)`` bool of a batch: ``p_label`` at the precision the cutoff was found
        at, ``valid`` the pixels that take part, ``disagrees`` where the label is not the most
        probable class."""
        p = p_label.double()
        candidates = valid & (p < self.theta)
        if self.ties_left > 0:
            at = valid & (p == self.theta)
            order = torch.cumsum(at.reshape(-1).int(), 0).reshape(at.shape)
            candidates |= at & (order <= self.ties_left)
            self.ties_left -= min(self.ties_left, int(at.sum()))
        return candidates & disagrees


def cutoff_from_values(values: np.ndarray, issues: int, thresholds: torch.Tensor) -> Cutoff:
    """The cutoff of the ``issues`` lowest of ``values`` (1-D, every valid pixel's own-label
    probability in pixel order)."""
    if issues <= 0 or values.size == 0:
        return Cutoff(0, -np.inf, 0, thresholds.tolist())
    issues = min(issues, values.size)
    theta = float(np.partition(values, issues - 1)[issues - 1])
    return Cutoff(issues, theta, issues - int(np.count_nonzero(values < theta)), thresholds.tolist())


class IssueRule:
    """The rule's statistics streamed over batches, then :meth:`cutoff`.

    Holds a ``(C, 65536)`` float16 histogram of own-label probability per labelled class (which
    gives the thresholds and the ranking) and one of ``p_best`` per most probable class over the
    pixels it disagrees with (which gives N): memory independent of the dataset, exact for float16
    probs (for other dtypes, values are taken at float16 precision).
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.by_label: torch.Tensor | None = None  # (C, 65536) counts of p_label per label
        self.disagree: torch.Tensor | None = None  # (C, 65536) counts of p_best per best class where best != label

    def update(self, p_label: torch.Tensor, best: torch.Tensor, p_best: torch.Tensor, labels: torch.Tensor,
               valid: torch.Tensor) -> None:
        """One batch ``(B, H, W)`` each (see :func:`noisyseg.ops.label_confidence`)."""
        C = self.num_classes
        group = torch.where(valid, labels, 0)
        self.by_label = grouped_histograms(p_label, group, C, valid, into=self.by_label)
        self.disagree = grouped_histograms(p_best, best, C, valid & (best != labels), into=self.disagree)

    def cutoff(self) -> Cutoff:
        values = float16_from_keys(torch.arange(_BINS)).double()  # ascending; NaN bins hold nothing
        if self.by_label is None:
            return Cutoff(0, -np.inf, 0, confident_thresholds(torch.zeros(self.num_classes),
                                                              torch.zeros(self.num_classes)).tolist())
        by_label = self.by_label.cpu().double()
        finite = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        thresholds = confident_thresholds((by_label * finite).sum(1), by_label.sum(1))
        reach = values[None, :] >= (thresholds[:, None] - TOLERANCE)
        issues = int(self.disagree.cpu()[reach].sum())
        ranked = torch.cumsum(self.by_label.cpu().sum(0), 0)
        issues = min(issues, int(ranked[-1]))
        if issues == 0:
            return Cutoff(0, -np.inf, 0, thresholds.tolist())
        key = int(torch.searchsorted(ranked, torch.tensor(issues)))
        below = int(ranked[key - 1]) if key else 0
        return Cutoff(issues, float(values[key]), issues - below, thresholds.tolist())
