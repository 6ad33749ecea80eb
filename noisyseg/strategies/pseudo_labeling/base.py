"""The pseudo-labeling interface: model outputs -> hard (and optionally soft) pseudo-labels.

A pseudo-labeling strategy object has:

- ``needs``: the inputs it requires, a subset of ``("probs", "logits", "cams", "tags", "features",
  "labels")``; a missing one is an input error.
- ``accepts``: the inputs it reads when they are there (calibrated-fusion: logits). ``noisyseg
  pseudo-label`` hands over every map it is given (cams, logits, features), the tags only to a
  strategy that needs or accepts them, and no pixel labels.
- ``label(inputs: PseudoInputs) -> PseudoLabels``: batched tensors on any device, so training
  can call it online. Returns hard labels ``(B, H, W)`` int64 with 255 = ignore and, when the
  strategy has them, soft labels ``(B, C, H, W)`` float summing to 1 over C.
- ``fit(ctx) -> dict`` is reserved for strategies that need a pass over data first; the base
  does nothing.

Strategies that keep state across batches (momentum prototypes) update it inside ``label``.

Online, ``noisyseg train --unlabelled U --pseudo-label NAME`` calls ``label`` once per step on the
teacher's predictions of the step's whole unlabelled batch (every process's images, so batch
statistics are those of the total batch): ``probs`` and ``logits`` always, ``features``, ``cams``
(CAMs of the model's classifier; PseudoSeg's SGC scores under ``--method pseudoseg``) and ``tags``
when ``needs`` names them, ``labels`` when the stream has its own (``--unlabelled-labels``). A
strategy with an ``alpha`` attribute gets U2PL's schedule α_t = α (1 - epoch / epochs) under
``--method u2pl``; one with ``state_dict``/``load_state_dict`` has its state saved with the run.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from noisyseg.constants import IGNORE_INDEX

IGNORE = IGNORE_INDEX  # the old name, for plugins that import it from here


class PseudoInputs(NamedTuple):
    """A batch of same-size images. Every tensor is optional; ``needs`` says what is read.

    - probs: (B, C, H, W) float probabilities.
    - logits: (B, C, H, W) float pre-softmax scores of the decoder.
    - cams: (B, C, H, W) float class activation maps at image size, in [0, 1] (max-normalised
      per class, zero for absent classes).
    - tags: (B, C) bool image-level labels (class present in the image).
    - features: (B, D, H', W') float pixel features at any stride (resized by the strategy).
    - labels: (B, H, W) int64 class ids with 255 = ignore (pixel labels where known).
    """

    ids: list[str]
    probs: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    cams: Optional[torch.Tensor] = None
    tags: Optional[torch.Tensor] = None
    features: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None


class PseudoLabels(NamedTuple):
    labels: torch.Tensor                  # (B, H, W) int64, 255 = ignore
    soft: Optional[torch.Tensor] = None   # (B, C, H, W) float, sums to 1 over C


class PseudoLabeler:
    """Base class: reads probs, no ``fit``; subclasses implement ``label``."""

    needs: tuple[str, ...] = ("probs",)
    accepts: tuple[str, ...] = ()

    def fit(self, ctx) -> dict:
        return {}

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        raise NotImplementedError


def require(inputs: PseudoInputs, name: str, strategy: str) -> torch.Tensor:
    """``inputs.<name>``, or ValueError naming the strategy when it is missing."""
    value = getattr(inputs, name)
    if value is None:
        raise ValueError(f"{strategy}: needs '{name}' in its inputs, found none")
    return value


def check_probs(probs: torch.Tensor, who: str) -> None:
    if probs.dim() != 4 or not probs.is_floating_point():
        raise ValueError(f"{who}: probs must be float (B, C, H, W), got {probs.dtype} {tuple(probs.shape)}")
