"""Clean-label embedding (Yi et al., sec. III.C.2): each superpixel takes the majority class of
its clean pixels.

"If sp_i overlaps with s_k we assign c_k to sp_i ... select the label with the largest number of
clean labels." Ties go to the lower class id. The share of the majority among the superpixel's
clean pixels is returned as a confidence. Superpixels without any clean pixel are unlabelled (-1).
"""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX


def embed_clean_labels(segments: torch.Tensor, labels: torch.Tensor, num_segments: int, num_classes: int,
                       ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Majority class of the clean pixels per segment.

    Args:
        segments: ``(H, W)`` int ids in ``[0, N)``.
        labels: ``(H, W)`` int class ids, ``ignore_index`` = hole (not clean).
        num_segments: N. num_classes: C.

    Returns:
        node_labels ``(N,)`` int64 (-1 = unlabelled), confidence ``(N,)`` float32 (majority share,
        0 for unlabelled) and counts ``(N, C)`` int64 clean pixels per class.

    Example:
        >>> seg = torch.tensor([[0, 0, 1, 1]]); lab = torch.tensor([[2, 2, 255, 255]])
        >>> embed_clean_labels(seg, lab, 2, 3)[0].tolist()
        [2, -1]
    """
    if segments.shape != labels.shape:
        raise ValueError(f"embed_clean_labels: segments {tuple(segments.shape)} and labels {tuple(labels.shape)} differ")
    seg = segments.reshape(-1).long()
    lab = labels.reshape(-1).long().to(seg.device)
    clean = (lab != ignore_index) & (lab >= 0) & (lab < num_classes)
    counts = torch.bincount(seg[clean] * num_classes + lab[clean], minlength=num_segments * num_classes)
    counts = counts.view(num_segments, num_classes)
    total = counts.sum(1)
    top, node_labels = counts.max(1)  # max returns the first maximal index: ties -> lower class id
    labelled = total > 0
    node_labels = torch.where(labelled, node_labels, torch.full_like(node_labels, -1))
    confidence = torch.where(labelled, top.float() / total.clamp_min(1).float(), torch.zeros_like(top, dtype=torch.float32))
    return node_labels, confidence, counts
