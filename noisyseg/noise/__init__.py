"""Noise models that corrupt ground-truth masks the way real pseudo-masks go wrong.

Each model is a function ``(label (H, W) uint8, rng, num_classes, **params) -> label`` in its own
module; ``parse_noise_spec`` turns a spec string into a pipeline and ``corrupt_mask`` applies it.
"""

from noisyseg.noise.spec import (DEFAULT_NOISE, NOISE_MODELS, STRENGTHS, NoiseStep, corrupt_mask, image_rng,
                                 parse_noise_spec, saturation_scale, scale_steps)

__all__ = ["DEFAULT_NOISE", "NOISE_MODELS", "STRENGTHS", "NoiseStep", "corrupt_mask", "image_rng", "parse_noise_spec",
           "saturation_scale", "scale_steps"]
