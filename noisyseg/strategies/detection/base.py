"""The detection interface: noisy label + model probabilities -> flags and a noise score.

A detection strategy object has two methods:

- ``fit(ctx: DetectionContext) -> dict``: an optional pass over data before detecting (dataset
  statistics, threshold calibration on another split). Returns what the report should show.
- ``detect(probs, labels) -> Detection``: ``probs (B, C, H, W)`` float probabilities,
  ``labels (B, H, W)`` int64 class ids with 255 = ignore; returns flags ``(B, H, W)`` bool (True =
  do not trust this pixel) and scores ``(B, H, W)`` float32 (higher = more likely wrong). Pixels
  whose label is 255 are never flagged.

Both work on batched tensors on any device, so training code can call ``detect`` online.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Optional

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.ops.label_confidence import label_confidence

IGNORE = IGNORE_INDEX  # the old name, for plugins that import it from here


class Batch(NamedTuple):
    """A batch of same-size images: ids, probs ``(B, C, H, W)``, labels and optional GT ``(B, H, W)``."""

    ids: list[str]
    probs: torch.Tensor
    labels: torch.Tensor
    gt: Optional[torch.Tensor] = None


class Detection(NamedTuple):
    flags: torch.Tensor   # (B, H, W) bool
    scores: torch.Tensor  # (B, H, W) float32


@dataclass
class DetectionContext:
    """What ``fit`` may read: the split being cleaned and, by name, other splits with ground truth.

    Both yield batches whose tensors may be overwritten by the next batch of the same iterator
    (the reader reuses its buffers): reduce them, or copy what must be kept.
    """

    num_classes: int
    batches: Callable[[], Iterator[Batch]]
    calibration_batches: Callable[[str], Iterator[Batch]]


class Detector:
    """Base class with a no-op ``fit``; subclasses implement ``detect``."""

    def fit(self, ctx: DetectionContext) -> dict:
        return {}

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        raise NotImplementedError


def label_probability(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p of each pixel's own label, ``(B, H, W)`` float32 (0 where the label is 255), and the valid
    mask (label != 255); through ``noisyseg.ops.label_confidence``, which also gives the best class
    and its probability for strategies that need those too."""
    return label_confidence(probs, labels.long()).p_label.float(), labels != IGNORE_INDEX
