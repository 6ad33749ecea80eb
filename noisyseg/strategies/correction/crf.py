"""crf: a dense CRF (Krähenbühl & Koltun, pydensecrf) over model probabilities, with the clean
labels as strong unaries; and ``crf_refine``, the ``--crf`` post-step for any other corrector.

Unaries are -log of a per-pixel score over classes:

- ``crf`` strategy: the model's probs on holes; on clean pixels a one-hot with
  ``clean_confidence`` on the label (the rest spread evenly), so the CRF bends around them.
- ``crf_refine`` (``--crf``): the other corrector's labels as one-hots with ``filled_confidence``
  on holes and ``clean_confidence`` on clean pixels (the seed-000 pipeline refines the corrected
  labels this way, cf. pydensecrf's ``unary_from_labels``).

Pairwise terms: a Gaussian smoothness kernel (sxy=3, compat=3) and the appearance kernel
(sxy=80, srgb=13, compat=10) on the RGB image, DeepLab's usual settings. Holes take the CRF's argmax.
"""

from __future__ import annotations

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.correction.base import CorrectionInputs, Corrector, one_hot_scores
from noisyseg.strategies.spec import StrategySpec
from noisyseg.timing import Timer

_TINY = 1e-8


def dense_crf_labels(scores: np.ndarray, image: np.ndarray, iterations: int = 5, sxy_gauss: float = 3,
                     compat_gauss: float = 3, sxy_bilateral: float = 80, srgb: float = 13,
                     compat_bilateral: float = 10) -> np.ndarray:
    """Mean-field inference over ``(C, H, W)`` scores (unary = -log score) on an ``(H, W, 3)`` uint8
    image; returns the ``(H, W)`` int64 argmax of the marginals."""
    import pydensecrf.densecrf as dcrf

    C, H, W = scores.shape
    crf = dcrf.DenseCRF2D(W, H, C)
    unary = -np.log(np.maximum(scores, _TINY)).reshape(C, -1)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=sxy_gauss, compat=compat_gauss)
    crf.addPairwiseBilateral(sxy=sxy_bilateral, srgb=srgb, rgbim=np.ascontiguousarray(image, dtype=np.uint8),
                             compat=compat_bilateral)
    q = np.asarray(crf.inference(iterations), dtype=np.float32).reshape(C, H, W)
    return q.argmax(0).astype(np.int64)


def crf_scores(probs: torch.Tensor, labels: torch.Tensor, clean_confidence: float) -> torch.Tensor:
    """``(B, C, H, W)`` unary scores: probs on holes, ``clean_confidence`` one-hots on clean pixels."""
    clean = labels != IGNORE_INDEX
    onehot = one_hot_scores(labels, probs.shape[1], clean_confidence)
    return torch.where(clean[:, None], onehot, probs.float())


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
