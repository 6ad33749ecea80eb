"""The correction interface: a label with holes (untrusted pixels set to 255) -> a full label.

A correction strategy object has:

- ``needs``: inputs it requires, a subset of ``("images", "features", "probs")``.
- ``accepts``: inputs it reads when they are given (same names); ``noisyseg correct`` loads an
  input only for a strategy that needs or accepts it.
- ``keep_clean``: True (the default) when pixels that are not holes keep their input label.
- ``learns``: True when the strategy, as configured, trains on a split with exact masks first;
  ``noisyseg correct --fit-split`` then calls ``fit(ctx)`` with a :class:`FitContext` before any
  image is corrected. The base learns nothing and its ``fit`` does nothing.
- ``correct(inputs: CorrectionInputs) -> Correction``: batched tensors of same-size images.
  The base handles what every strategy shares: images without a single clean pixel are passed
  through unchanged (and reported), the rest go to ``correct_batch``, and with ``keep_clean`` only
  the holes take the strategy's labels. Subclasses implement ``correct_batch``.

Holes the strategy leaves as 255 stay 255 (e.g. nothing to propagate from).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple, Optional

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.timing import Timer

IGNORE = IGNORE_INDEX  # the old name, for plugins that import it from here
StageTimer = Timer  # likewise: correct_batch's ``times`` is a noisyseg.timing.Timer


class CorrectionInputs(NamedTuple):
    """A batch of same-size images.

    - labels: (B, H, W) int64 class ids, 255 = hole (the pixels to fill).
    - num_classes: C.
    - images: (B, H, W, 3) uint8 RGB.
    - features: (B, D, h, w) float deep features at the model's stride.
    - probs: (B, C, H, W) float probabilities of a model.
    """

    ids: list[str]
    labels: torch.Tensor
    num_classes: int
    images: Optional[torch.Tensor] = None
    features: Optional[torch.Tensor] = None
    probs: Optional[torch.Tensor] = None

    def select(self, keep: torch.Tensor) -> "CorrectionInputs":
        """The sub-batch of images where ``keep`` (B,) bool is True."""
        idx = torch.nonzero(keep.cpu()).flatten()
        pick = (lambda t: None if t is None else t[idx.to(t.device)])
        return CorrectionInputs([self.ids[i] for i in idx.tolist()], pick(self.labels), self.num_classes,
                                pick(self.images), pick(self.features), pick(self.probs))


class FitContext(NamedTuple):
    """What ``fit`` may read: a split with exact masks, corrupted and cleaned like the one to correct.

    - num_classes: C.
    - batches(): an iterator of ``(CorrectionInputs, ground truth (B, H, W) int64, 255 = ignore)``
      over the fit split (a fresh pass per call).
    - track(items, total, description): wraps a long loop of the fit in a progress bar.
    """

    num_classes: int
    batches: Callable[[], Iterator[tuple[CorrectionInputs, torch.Tensor]]]
    track: Callable[[Iterable, int, str], Iterable] = lambda items, total, description: items


class Correction(NamedTuple):
    labels: torch.Tensor          # (B, H, W) int64 corrected labels
    passed_through: torch.Tensor  # (B,) bool: no clean pixel, returned unchanged
    timings: dict                 # stage -> seconds spent in this call


class Corrector:
    """Base class; subclasses implement ``correct_batch``."""

    needs: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    keep_clean: bool = True
    learns: bool = False

    def fit(self, ctx: FitContext) -> dict:
        return {}

    def correct_batch(self, inputs: CorrectionInputs, times: Timer) -> torch.Tensor:
        """Labels ``(B, H, W)`` int64 for images that have at least one clean pixel."""
        raise NotImplementedError

    def correct(self, inputs: CorrectionInputs) -> Correction:
        check_inputs(inputs, self.needs)
        labels = inputs.labels.long()
        clean = labels != IGNORE_INDEX
        has_clean = clean.flatten(1).any(1)
        times = Timer()
        out = labels.clone()
        if has_clean.any():
            sub = inputs if bool(has_clean.all()) else inputs.select(has_clean)
            proposal = self.correct_batch(sub, times).to(labels.device).long()
            idx = torch.nonzero(has_clean).flatten()
            if self.keep_clean:
                proposal = torch.where(clean[idx], labels[idx], proposal)
            out[idx] = proposal
        return Correction(out, ~has_clean, times.seconds)


def check_inputs(inputs: CorrectionInputs, needs: tuple[str, ...]) -> None:
    """Raises ValueError for missing inputs or shapes that disagree with the labels."""
    B, H, W = inputs.labels.shape
    for name in needs:
        if getattr(inputs, name) is None:
            raise ValueError(f"correction needs {name}, found none")
    if inputs.images is not None and tuple(inputs.images.shape) != (B, H, W, 3):
        raise ValueError(f"images must be (B, H, W, 3) = {(B, H, W, 3)}, got {tuple(inputs.images.shape)}")
    if inputs.probs is not None and tuple(inputs.probs.shape) != (B, inputs.num_classes, H, W):
        raise ValueError(f"probs must be (B, C, H, W) = {(B, inputs.num_classes, H, W)}, got {tuple(inputs.probs.shape)}")
    if inputs.features is not None and (inputs.features.dim() != 4 or inputs.features.shape[0] != B):
        raise ValueError(f"features must be (B={B}, D, h, w), got {tuple(inputs.features.shape)}")


def one_hot_scores(labels: torch.Tensor, num_classes: int, confidence: float) -> torch.Tensor:
    """``(B, H, W)`` labels -> ``(B, C, H, W)`` scores: ``confidence`` on the label, the rest spread
    evenly; 255 pixels get a uniform row."""
    B, H, W = labels.shape
    rest = (1.0 - confidence) / max(num_classes - 1, 1)
    out = torch.full((B, num_classes, H, W), rest, dtype=torch.float32, device=labels.device)
    valid = labels != IGNORE_INDEX
    idx = torch.where(valid, labels, torch.zeros_like(labels)).long()
    out.scatter_(1, idx[:, None], confidence)
    return torch.where(valid[:, None], out, torch.full_like(out, 1.0 / num_classes))
