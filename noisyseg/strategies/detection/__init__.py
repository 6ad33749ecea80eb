"""Detection strategies, one per module. ``SPECS`` lists what the built-in plugin registers."""

from noisyseg.strategies.detection import confident, entropy, small_loss, urn
from noisyseg.strategies.detection.base import Batch, Detection, DetectionContext, Detector

SPECS = [small_loss.SPEC, entropy.SPEC, confident.SPEC, urn.SPEC]

__all__ = ["Batch", "Detection", "DetectionContext", "Detector", "SPECS"]
