"""Weighting strategies, one per module. ``SPECS`` lists what the built-in plugin registers.

Modules: urn.py (``urn``), adaptive.py (``adaptive``), confidence.py (``confidence``). The batched
tensor functions behind them are public so training code can call them online.
"""

from noisyseg.strategies.weighting import adaptive, confidence, urn
from noisyseg.strategies.weighting.adaptive import adaptive_weight
from noisyseg.strategies.weighting.base import WeightInputs, Weighter
from noisyseg.strategies.weighting.confidence import confidence_weights
from noisyseg.strategies.weighting.urn import (COCO_SCALES, VOC_SCALES, dense_crf, urn_uncertainty,
                                               urn_uncertainty_batch, urn_weights)

SPECS = [urn.SPEC, adaptive.SPEC, confidence.SPEC]

__all__ = ["SPECS", "WeightInputs", "Weighter", "adaptive_weight", "confidence_weights", "urn_uncertainty",
           "urn_uncertainty_batch", "urn_weights", "dense_crf", "VOC_SCALES", "COCO_SCALES"]
