"""Post-steps that refine any corrector's output: ``noisyseg correct --crf``.

A refinement declares the inputs it reads in ``needs``, as a correction strategy does (the runner
loads them for it), names its timing ``stage`` and has ``refine(labels, inputs, passed_through)``:
the corrector's ``(B, H, W)`` labels, the batch's ``CorrectionInputs`` and the ``(B,)`` images the
corrector passed through unchanged (no clean pixel), which a refinement leaves alone.

``crf_refine`` (Yi et al.'s last step): the corrected labels as one-hots with ``filled_confidence``
on holes and ``clean_confidence`` on clean pixels (cf. pydensecrf's ``unary_from_labels``), a dense
CRF on the RGB image (``noisyseg.graph.dense_crf``), holes take its argmax.
"""

from __future__ import annotations

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.graph.dense_crf import dense_crf_labels
from noisyseg.strategies.correction.base import CorrectionInputs, one_hot_scores


def crf_refine(corrected: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, num_classes: int,
               filled_confidence: float = 0.7, clean_confidence: float = 0.95, iterations: int = 5,
               keep_clean: bool = True) -> torch.Tensor:
    """Refines another corrector's output.

    Args:
        corrected: ``(B, H, W)`` int64 corrected labels (255 where still unknown).
        labels: ``(B, H, W)`` the input labels with holes (255).
        images: ``(B, H, W, 3)`` uint8.
    Returns:
        ``(B, H, W)`` int64: CRF labels on the holes (and everywhere with ``keep_clean=False``).
    """
    holes = labels == IGNORE_INDEX
    scores = torch.where(holes[:, None], one_hot_scores(corrected, num_classes, filled_confidence),
                         one_hot_scores(labels, num_classes, clean_confidence))
    imgs = images.cpu().numpy()
    refined = torch.from_numpy(np.stack([dense_crf_labels(s, im, iterations)
                                         for s, im in zip(scores.cpu().numpy(), imgs)])).to(corrected.device)
    return torch.where(holes | (not keep_clean), refined, labels.long())


class CrfRefinement:
    """``--crf``: ``crf_refine`` after the corrector, on the images it did not pass through;
    ``keep_clean`` as the corrector's (False: clean pixels take the CRF's labels too)."""

    stage = "crf"
    needs = ("images",)

    def __init__(self, keep_clean: bool = True):
        self.keep_clean = keep_clean

    def refine(self, labels: torch.Tensor, inputs: CorrectionInputs, passed_through: torch.Tensor) -> torch.Tensor:
        refined = crf_refine(labels, inputs.labels, inputs.images, inputs.num_classes, keep_clean=self.keep_clean)
        return torch.where(passed_through[:, None, None].to(labels.device), labels, refined)
