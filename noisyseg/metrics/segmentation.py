"""Confusion-matrix segmentation metrics with an ignore index, and label-dir quality against GT."""

from __future__ import annotations

import numpy as np
import torch


def as_long(a) -> torch.Tensor:
    """An integer array or tensor as an int64 tensor (on the tensor's device; numpy on the CPU)."""
    return (a if torch.is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))).long()


class ConfusionMatrix:
    """Accumulates a ``(C, C)`` confusion matrix (rows = ground truth, columns = prediction).

    Pixels whose ground truth or prediction is 255 are skipped.

    Example:
        >>> cm = ConfusionMatrix(2); cm.update(np.array([[0, 1]]), np.array([[0, 0]]))
        >>> round(cm.pixel_accuracy(), 2)
        0.5
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, gt, pred) -> None:
        """gt, pred: ``(...)`` integer arrays or tensors of the same shape."""
        self.add_counts(_pair_counts(gt, pred, self.num_classes, "ConfusionMatrix.update"))

    def add_counts(self, counts: torch.Tensor) -> None:
        """Adds the first C*C entries of a :func:`_pair_counts` result."""
        C = self.num_classes
        self.matrix += counts[: C * C].reshape(C, C).cpu().numpy()

    def iou(self) -> np.ndarray:
        """Per-class IoU, NaN for classes absent from both GT and prediction."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        union = m.sum(0) + m.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


def _pair_counts(gt, pred, num_classes: int, where: str) -> torch.Tensor:
    """One bincount over pixel pairs: entry ``g * C + p`` counts GT g labelled p (both in [0, C));
    entry ``C*C`` counts GT pixels in [0, C) that ``pred`` leaves unlabelled (255 or out of range);
    entry ``C*C + 1`` the rest (GT ignored)."""
    gt, pred = as_long(gt), as_long(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"{where}: gt has shape {tuple(gt.shape)}, labels {tuple(pred.shape)}")
    C = num_classes
    gt_ok = (gt >= 0) & (gt < C)
    pred_ok = (pred >= 0) & (pred < C)
    code = torch.where(gt_ok, torch.where(pred_ok, gt * C + pred, C * C), C * C + 1)
    return torch.bincount(code.reshape(-1), minlength=C * C + 2)


class LabelQuality:
    """Quality of a label dir against ground truth.

    - ``coverage``: share of non-ignore GT pixels that the labels label (not 255).
    - ``precision``: share of labelled pixels (both non-ignore) that agree with GT.
    - ``miou`` / ``pixel_accuracy`` / ``per_class_iou``: from the confusion matrix over pixels
      that both label.
    """

    def __init__(self, num_classes: int, class_names: list[str] | None = None):
        self.cm = ConfusionMatrix(num_classes)
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.gt_pixels = 0
        self.labelled = 0
        self.images = 0

    def update(self, gt, labels) -> None:
        """gt, labels: ``(H, W)`` or a batch ``(B, H, W)``, integer arrays or tensors (255 = none)."""
        C = self.cm.num_classes
        counts = _pair_counts(gt, labels, C, "LabelQuality.update").cpu()
        self.cm.add_counts(counts)
        labelled = int(counts[: C * C].sum())
        self.labelled += labelled
        self.gt_pixels += labelled + int(counts[C * C])
        self.images += gt.shape[0] if len(gt.shape) == 3 else 1

    def add_confusion(self, matrix, images: int) -> None:
        """Adds ``(C + 1, C + 1)`` counts of (ground truth, label) pixel pairs whose last row and column
        stand for 255 (or any value outside 0..C-1), e.g. one bincount shared by several figures."""
        C = self.cm.num_classes
        m = np.asarray(matrix, dtype=np.int64)
        self.cm.matrix += m[:C, :C]
        labelled = int(m[:C, :C].sum())
        self.labelled += labelled
        self.gt_pixels += int(m[:C].sum())
        self.images += images

    def summary(self) -> dict:
        iou = self.cm.iou()
        return {
            "images": self.images,
            "miou": self.cm.miou(),
            "pixel_accuracy": self.cm.pixel_accuracy(),
            "precision": self.cm.pixel_accuracy(),
            "coverage": self.labelled / self.gt_pixels if self.gt_pixels else float("nan"),
            "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(self.class_names, iou)},
        }
