"""crf: a dense CRF (Krähenbühl & Koltun, pydensecrf) over model probabilities, with the clean
labels as strong unaries. (``crf_refine``, the ``--crf`` post-step for any other corrector, lives in
``noisyseg.strategies.correction.refine``; it stays importable from here.)

Unaries are -log of a per-pixel score over classes: the model's probs on holes; on clean pixels a
one-hot with ``clean_confidence`` on the label (the rest spread evenly), so the CRF bends around them.

Pairwise terms: a Gaussian smoothness kernel (sxy=3, compat=3) and the appearance kernel
(sxy=80, srgb=13, compat=10) on the RGB image, DeepLab's usual settings; the mean field is
``noisyseg.graph.dense_crf``'s, shared with URN. Holes take the CRF's argmax.
"""

from __future__ import annotations

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.graph.dense_crf import dense_crf_labels  # also importable from here, as before
from noisyseg.params import Param
from noisyseg.strategies.correction.base import CorrectionInputs, Corrector, one_hot_scores
from noisyseg.strategies.correction.refine import crf_refine  # noqa: F401  (importable from here, as before)
from noisyseg.strategies.spec import StrategySpec
from noisyseg.timing import Timer


def crf_scores(probs: torch.Tensor, labels: torch.Tensor, clean_confidence: float) -> torch.Tensor:
    """``(B, C, H, W)`` unary scores: probs on holes, ``clean_confidence`` one-hots on clean pixels."""
    clean = labels != IGNORE_INDEX
    onehot = one_hot_scores(labels, probs.shape[1], clean_confidence)
    return torch.where(clean[:, None], onehot, probs.float())


class DenseCRF(Corrector):
    needs = ("images", "probs")

    def __init__(self, clean_confidence: float = 0.95, iterations: int = 5, keep_clean: bool = True):
        self.clean_confidence, self.iterations, self.keep_clean = clean_confidence, iterations, keep_clean

    def correct_batch(self, inputs: CorrectionInputs, times: Timer) -> torch.Tensor:
        with times("crf"):
            scores = crf_scores(inputs.probs, inputs.labels.long(), self.clean_confidence).cpu().numpy()
            images = inputs.images.cpu().numpy()
            return torch.from_numpy(np.stack([dense_crf_labels(s, im, self.iterations) for s, im in zip(scores, images)]))


SPEC = StrategySpec(
    kind="correction",
    name="crf",
    summary="dense CRF over model probs with the clean labels as strong unaries",
    factory=DenseCRF,
    params=(
        Param("clean_confidence", float, 0.95, "score of a clean pixel's own label in its unary", min=0.0, max=1.0),
        Param("iterations", int, 5, "mean-field iterations", min=1),
        Param("keep_clean", bool, True, "clean pixels keep their label (false: all take the CRF's)"),
    ),
)
