"""Losses for learning from noisy masks."""

from noisyseg.losses.weighted_ce import weighted_cross_entropy

__all__ = ["weighted_cross_entropy"]
