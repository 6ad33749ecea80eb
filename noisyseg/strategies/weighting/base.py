"""The weighting interface: model outputs (and labels, images) -> per-pixel loss weights.

A weighting strategy object has:

- ``needs``: inputs it requires, a subset of ``("probs", "labels", "images")``.
- ``accepts``: inputs it reads when they are there (URN: the image for its CRF, the labels'
  classes); ``noisyseg weight`` loads the images only for a strategy that needs or accepts them,
  and hands over the labels whenever it is given them.
- ``weigh(inputs: WeightInputs) -> torch.Tensor``: ``(B, H, W)`` float32 weights >= 0 (1 = full
  say). Batched tensors on any device, so training can call it online.
- ``fit(ctx) -> dict``: reserved for a pass over data first; the base does nothing.

Weights above 1 are allowed (U2PL's λ_u); a weights dir PNG stores weight x 255 clipped to 1, so
use the float ``.npy`` output for them.

Online, ``noisyseg train --unlabelled U --weighting NAME`` calls ``weigh`` once per step on the
teacher's ``probs`` of the whole unlabelled batch, with the pseudo-labels as ``labels`` and the
weak views as ``images``; the weights multiply the per-pixel unsupervised loss.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from noisyseg.constants import IGNORE_INDEX

IGNORE = IGNORE_INDEX  # the old name, for plugins that import it from here


class WeightInputs(NamedTuple):
    """A batch of same-size images.

    - probs: (B, C, H, W) float probabilities.
    - labels: (B, H, W) int64 class ids, 255 = ignore (the labels the weights will go with).
    - images: (B, H, W, 3) uint8 RGB.
    """

    ids: list[str]
    probs: torch.Tensor
    labels: Optional[torch.Tensor] = None
    images: Optional[torch.Tensor] = None


class Weighter:
    """Base class; subclasses implement ``weigh``."""

    needs: tuple[str, ...] = ("probs",)
    accepts: tuple[str, ...] = ()

    def fit(self, ctx) -> dict:
        return {}

    def weigh(self, inputs: WeightInputs) -> torch.Tensor:
        raise NotImplementedError
