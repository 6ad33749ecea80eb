"""The inputs cleanlab.segmentation takes, checked, in batches; plus lists of differently sized images.

``labels``: ``(N, H, W)`` integer class ids, or a list of ``(H_i, W_i)`` arrays; pixels equal to
``ignore_index`` take no part. ``pred_probs``: ``(N, K, H, W)`` float, or a list of
``(K, H_i, W_i)`` arrays.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX

DEFAULT_BATCH_VALUES = 1 << 22  # pred_probs values per batch when batch_size is None (small batches stay in cache)
_TORCH_FLOATS = (np.float16, np.float32, np.float64)


class Batch(NamedTuple):
    start: int  #: index of the batch's first image
    labels: torch.Tensor  #: (B, H, W) int64
    valid: torch.Tensor  #: (B, H, W) bool, labels != ignore_index
    probs: torch.Tensor | None  #: (B, K, H, W) float, None when no pred_probs were given
    index: torch.Tensor  #: (B, H, W) int64, labels with ignored pixels set to 0
    all_valid: bool  #: no pixel of the batch is ignored

    def own_probability(self) -> torch.Tensor:
        """``(B, H, W)`` each pixel's probability of its label (0 where ignored), read with one
        gather: a fraction of the memory traffic of :func:`noisyseg.ops.label_confidence`."""
        p = self.probs.gather(1, self.index.unsqueeze(1)).squeeze(1)
        return p if self.all_valid else p.masked_fill_(~self.valid, 0)


def _images(arrays, ndim: int, name: str) -> tuple[list[np.ndarray], bool]:
    """Per-image views of a dense array or a list, and whether the input was dense."""
    if isinstance(arrays, (list, tuple)):
        images = [np.asarray(a) for a in arrays]
        for i, a in enumerate(images):
            if a.ndim != ndim - 1:
                raise ValueError(f"{name}[{i}] must have {ndim - 1} dimensions, got shape {a.shape}")
        return images, False
    arrays = np.asarray(arrays)
    if arrays.ndim != ndim:
        shape = "(N, H, W)" if ndim == 3 else "(N, K, H, W)"
        raise ValueError(f"{name} must have a shape of {shape} (or be a list of images), got {arrays.shape}")
    return list(arrays), True


class Images:
    """Checked labels (and pred_probs) of N images, read in batches of equally sized images.

    ``batch_size`` is cleanlab's: a budget of pred_probs values per batch (at least one image).
    """

    def __init__(self, labels, pred_probs=None, *, ignore_index: int = IGNORE_INDEX, batch_size: int | None = None):
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"Batch size must be greater than 0, got {batch_size}")
        self.labels, self.dense = _images(labels, 3, "labels")
        self._dense_labels = np.asarray(labels) if self.dense else None  # sliced without copies
        self.probs = None
        self._dense_probs = None  # the (N, K, H, W) array itself, sliced without copies
        if pred_probs is not None:
            self.probs, dense = _images(pred_probs, 4, "pred_probs")
            self.dense = self.dense and dense
            if dense:
                self._dense_probs = np.asarray(pred_probs)
            if len(self.probs) != len(self.labels):
                raise ValueError(f"labels and pred_probs must have matching dimensions for N: "
                                 f"{len(self.labels)} and {len(self.probs)} images")
            ks = {p.shape[0] for p in self.probs}
            if len(ks) > 1:
                raise ValueError(f"pred_probs must have the same number of classes K for every image, got {sorted(ks)}")
            for i, (lab, p) in enumerate(zip(self.labels, self.probs)):
                if lab.shape != p.shape[1:]:
                    raise ValueError(f"labels and pred_probs must have matching dimensions for H and W: image {i} "
                                     f"has labels {lab.shape} and pred_probs {p.shape}")
                if p.dtype.kind != "f":
                    raise ValueError(f"pred_probs must be floating point, got {p.dtype}")
        self.num_classes = self.probs[0].shape[0] if self.probs else None
        self.ignore_index = ignore_index
        self.batch_values = batch_size or DEFAULT_BATCH_VALUES
        for i, lab in enumerate(self.labels):
            if lab.dtype.kind not in "iub":
                raise ValueError(f"labels must be integer class ids, got {lab.dtype}")

    def __len__(self) -> int:
        return len(self.labels)

    def check_values(self, index: torch.Tensor, start: int) -> None:
        """``index``: a batch's labels with ignored pixels set to 0; raises unless all are class ids."""
        if self.num_classes is None or not index.numel():
            return
        low, high = (int(v) for v in torch.aminmax(index))
        if low < 0 or high >= self.num_classes:
            bad = (index < 0) | (index >= self.num_classes)
            value = int(index[bad][0])
            image = start + int(bad.reshape(bad.shape[0], -1).any(1).int().argmax())
            raise ValueError(f"labels must be class ids in 0..{self.num_classes - 1} or ignore_index="
                             f"{self.ignore_index}, found {value} in image {image}")

    def batches(self) -> Iterator[Batch]:
        """Batches of consecutive images of one size, in order."""
        i, n = 0, len(self.labels)
        while i < n:
            shape = self.labels[i].shape
            per_image = max(1, int(np.prod(shape)) * (self.num_classes or 1))
            j = i + 1
            limit = max(1, self.batch_values // per_image)
            while j < n and j - i < limit and self.labels[j].shape == shape:
                j += 1
            chunk = self._dense_labels[i:j] if self._dense_labels is not None else np.stack(self.labels[i:j])
            labels = torch.from_numpy(np.ascontiguousarray(chunk).astype(np.int64, copy=False))
            valid = labels != self.ignore_index
            all_valid = bool(valid.all())
            index = labels if all_valid else torch.where(valid, labels, 0)
            self.check_values(index, i)
            probs = None
            if self.probs is not None:
                p = self._dense_probs[i:j] if self._dense_probs is not None else np.stack(self.probs[i:j])
                if p.dtype not in _TORCH_FLOATS:
                    p = p.astype(np.float64)
                probs = torch.from_numpy(np.ascontiguousarray(p))
            yield Batch(i, labels, valid, probs, index, all_valid)
            i = j

    def shaped(self, per_image: list[np.ndarray]):
        """Per-image results as the input came: one ``(N, ...)`` array when dense, else the list."""
        return np.stack(per_image) if self.dense and per_image else per_image
