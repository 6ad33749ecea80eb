"""Confusion-matrix segmentation metrics with an ignore index, and label-dir quality against GT."""

from __future__ import annotations

import numpy as np
import torch

IGNORE = 255


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
        gt = torch.as_tensor(np.asarray(gt) if not torch.is_tensor(gt) else gt).reshape(-1).long()
        pred = torch.as_tensor(np.asarray(pred) if not torch.is_tensor(pred) else pred).reshape(-1).long()
        if gt.shape != pred.shape:
            raise ValueError(f"ConfusionMatrix.update: gt has {gt.numel()} pixels, pred {pred.numel()}")
        C = self.num_classes
        keep = (gt < C) & (pred < C) & (gt >= 0) & (pred >= 0)
        idx = gt[keep] * C + pred[keep]
        self.matrix += torch.bincount(idx, minlength=C * C).reshape(C, C).cpu().numpy()

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

    def update(self, gt: np.ndarray, labels: np.ndarray) -> None:
        gt = np.asarray(gt)
        labels = np.asarray(labels)
        valid = gt != IGNORE
        self.gt_pixels += int(valid.sum())
        self.labelled += int((valid & (labels != IGNORE)).sum())
        self.cm.update(gt, labels)
        self.images += 1

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
