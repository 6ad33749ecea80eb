"""Losses for learning from noisy masks."""

from noisyseg.losses.info_nce import pixel_info_nce
from noisyseg.losses.soft_ce import soft_cross_entropy
from noisyseg.losses.symmetric_ce import symmetric_cross_entropy
from noisyseg.losses.weighted_ce import weighted_cross_entropy

__all__ = ["weighted_cross_entropy", "symmetric_cross_entropy", "soft_cross_entropy", "pixel_info_nce"]
