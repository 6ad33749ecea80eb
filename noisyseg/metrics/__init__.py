"""Streaming metrics: accumulate image by image, read the figures at the end."""

from noisyseg.metrics.calibration import CalibrationError
from noisyseg.metrics.detection import DetectionQuality, ScoreRanking
from noisyseg.metrics.segmentation import ConfusionMatrix, LabelQuality

__all__ = ["ConfusionMatrix", "LabelQuality", "DetectionQuality", "ScoreRanking", "CalibrationError"]
