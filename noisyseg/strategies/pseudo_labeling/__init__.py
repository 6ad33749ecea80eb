"""Pseudo-labeling strategies, one per module. ``SPECS`` lists what the built-in plugin registers.

Modules: argmax.py (``argmax``), cam.py (``cam-threshold``), entropy.py (``entropy-filter``),
prototype.py (``prototype-denoised``), fusion.py (``calibrated-fusion``). The batched tensor
functions behind them are public so training code can call them online:
``from noisyseg.strategies.pseudo_labeling import entropy_filter, calibrated_fusion, ...``.
"""

from noisyseg.strategies.pseudo_labeling import argmax, cam, entropy, fusion, prototype
from noisyseg.strategies.pseudo_labeling.argmax import argmax_labels
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels
from noisyseg.strategies.pseudo_labeling.cam import cam_threshold, normalise_cams
from noisyseg.strategies.pseudo_labeling.entropy import alpha_schedule, entropy_filter, reliable_mask
from noisyseg.strategies.pseudo_labeling.fusion import calibrated_fusion, cams_to_logits, fusion_norm, sharpen
from noisyseg.strategies.pseudo_labeling.prototype import (class_prototypes, momentum_update, prototype_denoise,
                                                            prototype_weights)

SPECS = [argmax.SPEC, cam.SPEC, entropy.SPEC, prototype.SPEC, fusion.SPEC]

__all__ = ["SPECS", "PseudoInputs", "PseudoLabeler", "PseudoLabels", "argmax_labels", "cam_threshold",
           "normalise_cams", "entropy_filter", "alpha_schedule", "reliable_mask", "class_prototypes",
           "momentum_update", "prototype_weights", "prototype_denoise", "calibrated_fusion", "fusion_norm",
           "sharpen", "cams_to_logits"]
