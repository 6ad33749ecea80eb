"""Pseudo-labeling strategies, one per module named after the strategy it registers. ``SPECS`` lists
what the built-in plugin registers.

Modules: argmax.py (``argmax``), class_balanced.py (``class-balanced``), cam_threshold.py
(``cam-threshold``), entropy_filter.py (``entropy-filter``), prototype_denoised.py
(``prototype-denoised``), calibrated_fusion.py (``calibrated-fusion``). The batched tensor
functions behind them are public so training code can call them online:
``from noisyseg.strategies.pseudo_labeling import entropy_filter, calibrated_fusion, ...``.
Where a function shares its module's name (``cam_threshold``, ``entropy_filter``,
``calibrated_fusion``) the package's attribute is the function; import the module by its full path
(``from noisyseg.strategies.pseudo_labeling.cam_threshold import SPEC``).
"""

from noisyseg.strategies.pseudo_labeling.argmax import SPEC as _ARGMAX
from noisyseg.strategies.pseudo_labeling.argmax import argmax_labels
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels
from noisyseg.strategies.pseudo_labeling.calibrated_fusion import SPEC as _CALIBRATED_FUSION
from noisyseg.strategies.pseudo_labeling.calibrated_fusion import calibrated_fusion, cams_to_logits, fusion_norm, sharpen
from noisyseg.strategies.pseudo_labeling.cam_threshold import SPEC as _CAM_THRESHOLD
from noisyseg.strategies.pseudo_labeling.cam_threshold import cam_threshold, normalise_cams
from noisyseg.strategies.pseudo_labeling.class_balanced import SPEC as _CLASS_BALANCED
from noisyseg.strategies.pseudo_labeling.class_balanced import class_balanced_labels
from noisyseg.strategies.pseudo_labeling.entropy_filter import SPEC as _ENTROPY_FILTER
from noisyseg.strategies.pseudo_labeling.entropy_filter import alpha_schedule, entropy_filter, reliable_mask
from noisyseg.strategies.pseudo_labeling.prototype_denoised import SPEC as _PROTOTYPE_DENOISED
from noisyseg.strategies.pseudo_labeling.prototype_denoised import (class_prototypes, momentum_update, prototype_denoise,
                                                                     prototype_weights)

SPECS = [_ARGMAX, _CLASS_BALANCED, _CAM_THRESHOLD, _ENTROPY_FILTER, _PROTOTYPE_DENOISED, _CALIBRATED_FUSION]

__all__ = ["SPECS", "PseudoInputs", "PseudoLabeler", "PseudoLabels", "argmax_labels", "class_balanced_labels",
           "cam_threshold", "normalise_cams", "entropy_filter", "alpha_schedule", "reliable_mask", "class_prototypes",
           "momentum_update", "prototype_weights", "prototype_denoise", "calibrated_fusion", "fusion_norm",
           "sharpen", "cams_to_logits"]
