"""``find_label_issues``: cleanlab.segmentation.filter's, on numpy arrays or lists of images."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.issues.inputs import Images
from noisyseg.metrics.label_issues import confident_thresholds, count_issues, cutoff_from_values
from noisyseg.ops.label_confidence import label_confidence


def find_label_issues(labels, pred_probs, *, batch_size: int | None = None, n_jobs: int | None = None,
                      verbose: bool = True, ignore_index: int = IGNORE_INDEX, **kwargs):
    """Boolean mask of the pixels whose given label is likely wrong (cleanlab's rule, see
    :mod:`noisyseg.metrics.label_issues`).

    Args:
        labels: ``(N, H, W)`` integer class ids in 0..K-1 (or ``ignore_index``), or a list of
            ``(H_i, W_i)`` arrays.
        pred_probs: ``(N, K, H, W)`` float probabilities, or a list of ``(K, H_i, W_i)`` arrays.
        batch_size: pred_probs values per batch (memory only; results do not depend on it).
        n_jobs: accepted for compatibility; torch's threads do the work.
        verbose: print the number of issues found.
        ignore_index: label value of pixels that take no part and are never flagged.
        **kwargs: ``downsample`` is accepted and ignored (issues are found at full resolution).

    Returns:
        ``(N, H, W)`` bool, or a list of ``(H_i, W_i)`` bool arrays when the input was a list.
    """
    _no_downsample(kwargs)
    images = Images(labels, pred_probs, ignore_index=ignore_index, batch_size=batch_size)
    C = images.num_classes
    sums = torch.zeros(C, dtype=torch.float64)
    counts = torch.zeros(C, dtype=torch.float64)
    for b in images.batches():
        p_label = b.own_probability()
        lab = b.labels[b.valid]
        sums += torch.bincount(lab, weights=p_label[b.valid].double(), minlength=C)[:C]
        counts += torch.bincount(lab, minlength=C).double()[:C]
    thresholds = confident_thresholds(sums, counts)

    issues, kept = 0, []
    for b in images.batches():
        p_label, best, p_best = label_confidence(b.probs, b.labels)
        issues += count_issues(thresholds, best, p_best, b.labels, b.valid)
        kept.append((p_label, b.valid, best != b.labels))
    values = np.concatenate([p[v].numpy() for p, v, _ in kept]) if kept else np.zeros(0)
    flag = cutoff_from_values(values, issues, thresholds).flagger()
    masks = [m.numpy() for p, v, d in kept for m in flag(p, v, d)]
    if verbose:
        print(f"{int(sum(m.sum() for m in masks))} label issues among {values.size} pixels of {len(images)} images")
    return images.shaped(masks)


def _no_downsample(kwargs: dict) -> None:
    if kwargs.get("downsample", 1) != 1:
        warnings.warn("downsample is ignored: noisyseg finds label issues at full resolution", stacklevel=3)
