"""``get_label_quality_scores``: cleanlab.segmentation.rank's, on numpy arrays or lists of images."""

from __future__ import annotations

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.issues.inputs import Images
from noisyseg.metrics.softmin import TEMPERATURE, softmin_scores


def get_label_quality_scores(labels, pred_probs, *, method: str = "softmin", batch_size: int | None = None,
                             n_jobs: int | None = None, verbose: bool = True, ignore_index: int = IGNORE_INDEX, **kwargs):
    """A label-quality score per image (lower = more likely mislabelled) and per pixel.

    Args:
        labels, pred_probs, batch_size, n_jobs, ignore_index: as for :func:`noisyseg.find_label_issues`.
        method: ``"softmin"`` (:mod:`noisyseg.metrics.softmin` over the own-label probability) or
            ``"num_pixel_issues"`` (1 - the share of the image's valid pixels that are issues).
        verbose: accepted for compatibility (nothing is printed).
        **kwargs: ``temperature`` of the softmin (default 0.1); ``downsample`` is ignored.

    Returns:
        ``(image_scores, pixel_scores)``: ``(N,)`` float64 in [0, 1] (NaN for an image without
        valid pixels), and ``(N, H, W)`` float64 own-label probabilities (NaN where ignored),
        or a list of ``(H_i, W_i)`` arrays when the input was a list.
    """
    if method not in ("softmin", "num_pixel_issues"):
        raise ValueError(f"Invalid Method: expected 'softmin' or 'num_pixel_issues', got {method!r}")
    temperature = kwargs.get("temperature", TEMPERATURE)
    images = Images(labels, pred_probs, ignore_index=ignore_index, batch_size=batch_size)
    image_scores = np.empty(len(images))
    dense = np.empty((len(images), *images.labels[0].shape)) if images.dense and len(images) else None
    pixel_scores = []
    for b in images.batches():
        p_label = b.own_probability()
        if method == "softmin":
            image_scores[b.start: b.start + len(b.labels)] = softmin_scores(p_label, b.valid, temperature).numpy()
        scores = dense[b.start: b.start + len(b.labels)] if dense is not None else np.empty(tuple(b.labels.shape))
        scores[...] = p_label.numpy()
        if not bool(b.valid.all()):
            scores[~b.valid.numpy()] = np.nan
        if dense is None:
            pixel_scores += list(scores)
    if method == "num_pixel_issues":
        from noisyseg.issues.filter import find_label_issues

        flags = find_label_issues(labels, pred_probs, batch_size=batch_size, verbose=False, ignore_index=ignore_index,
                                  **{k: v for k, v in kwargs.items() if k == "downsample"})
        for i, (issues, scores) in enumerate(zip(flags, dense if dense is not None else pixel_scores)):
            valid = ~np.isnan(scores)
            image_scores[i] = 1 - issues[valid].mean() if valid.any() else np.nan
    return image_scores, dense if dense is not None else pixel_scores
