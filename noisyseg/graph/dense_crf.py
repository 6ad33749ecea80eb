"""Dense CRF (Krähenbühl & Koltun) on the fully connected pixel graph of one image, via pydensecrf.

One mean-field helper for every caller: the ``crf`` corrector and ``--crf`` refinement (Yi et al.'s
last step) and URN's per-scale refinement (Li et al., eq. 7). Unaries are -log of a per-pixel score
over classes (clamped at 1e-8; scores need not sum to 1: a per-pixel constant does not change the
result). Pairwise terms: a Gaussian smoothness kernel (sxy=3, compat=3) and, when an image is given,
the appearance kernel (sxy=80, srgb=13, compat=10) on its RGB values, DeepLab's usual settings.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-8


def dense_crf(scores: np.ndarray, image: np.ndarray | None = None, iterations: int = 5, sxy_gauss: float = 3,
              compat_gauss: float = 3, sxy_bilateral: float = 80, srgb: float = 13,
              compat_bilateral: float = 10) -> np.ndarray:
    """Mean-field inference over ``(K, H, W)`` non-negative scores (unary = -log score).

    Args:
        scores: ``(K, H, W)`` float scores, e.g. probabilities or one-hot label scores.
        image: optional ``(H, W, 3)`` uint8 RGB for the appearance kernel (None: smoothness only).
        iterations: mean-field iterations.
    Returns:
        ``(K, H, W)`` float32 marginals.
    """
    import pydensecrf.densecrf as dcrf

    K, H, W = scores.shape
    crf = dcrf.DenseCRF2D(W, H, K)
    unary = -np.log(np.maximum(scores, _TINY)).reshape(K, -1)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=sxy_gauss, compat=compat_gauss)
    if image is not None:
        crf.addPairwiseBilateral(sxy=sxy_bilateral, srgb=srgb, rgbim=np.ascontiguousarray(image, dtype=np.uint8),
                                 compat=compat_bilateral)
    return np.asarray(crf.inference(iterations), dtype=np.float32).reshape(K, H, W)


def dense_crf_labels(scores: np.ndarray, image: np.ndarray, iterations: int = 5, sxy_gauss: float = 3,
                     compat_gauss: float = 3, sxy_bilateral: float = 80, srgb: float = 13,
                     compat_bilateral: float = 10) -> np.ndarray:
    """``dense_crf`` on an ``(H, W, 3)`` uint8 image; returns the ``(H, W)`` int64 argmax of the marginals."""
    return dense_crf(scores, image, iterations, sxy_gauss, compat_gauss, sxy_bilateral, srgb,
                     compat_bilateral).argmax(0).astype(np.int64)


__all__ = ["dense_crf", "dense_crf_labels"]
