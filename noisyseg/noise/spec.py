"""Noise specs: ``model[:key=value,...]`` steps joined by ``+``, applied in order.

Every step accepts ``rate`` (chance that it runs on a given image, default 1) besides its model's
own parameters. Example: ``cam:rate=0.5,scale=8+boundary:k=6+drop:p=0.3+swap:p=0.15``.
Randomness is drawn from one generator per image seeded by (seed, id), so results do not depend
on the order or the subset of images processed.
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from noisyseg.errors import ParameterError
from noisyseg.noise.boundary import boundary_shift
from noisyseg.noise.cam import cam_like
from noisyseg.noise.drop import object_drop
from noisyseg.noise.swap import class_swap

NOISE_MODELS: dict[str, Callable] = {
    "boundary": boundary_shift,
    "drop": object_drop,
    "swap": class_swap,
    "cam": cam_like,
}
DEFAULT_NOISE = "cam:rate=0.4,scale=8+boundary:k=8,p=0.7+drop:p=0.3+swap:p=0.15"


@dataclass(frozen=True)
class NoiseStep:
    model: str
    rate: float = 1.0
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        args = [f"rate={self.rate:g}"] if self.rate != 1.0 else []
        args += [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items()]
        return self.model + (":" + ",".join(args) if args else "")


def _model_params(model: str) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(NOISE_MODELS[model])
    return {n: p for n, p in list(sig.parameters.items())[3:]}


def parse_noise_spec(spec: str) -> list[NoiseStep]:
    """Parses a spec string; unknown models or parameters raise ``ParameterError``."""
    steps = []
    for part in filter(None, (s.strip() for s in spec.split("+"))):
        name, _, args = part.partition(":")
        name = name.strip()
        if name not in NOISE_MODELS:
            raise ParameterError(f"--noise {spec}: unknown noise model '{name}'; known: {', '.join(NOISE_MODELS)}")
        known = _model_params(name)
        rate, params = 1.0, {}
        for arg in filter(None, (a.strip() for a in args.split(","))):
            key, sep, value = arg.partition("=")
            if not sep:
                raise ParameterError(f"--noise {spec}: expected key=value in '{part}', found '{arg}'")
            key = key.strip()
            try:
                if key == "rate":
                    rate = float(value)
                    if not 0 <= rate <= 1:
                        raise ValueError
                elif key in known:
                    params[key] = type(known[key].default)(float(value)) if isinstance(known[key].default, (int, float)) else value
                else:
                    raise ParameterError(f"--noise {spec}: model '{name}' has no parameter '{key}'; "
                                         f"its parameters: rate, {', '.join(known)}")
            except ValueError:
                raise ParameterError(f"--noise {spec}: expected a number for '{key}' of '{name}'"
                                     f"{' in [0, 1]' if key == 'rate' else ''}, found '{value}'") from None
        steps.append(NoiseStep(name, rate, params))
    if not steps:
        raise ParameterError(f"--noise '{spec}': expected at least one noise model ({', '.join(NOISE_MODELS)})")
    return steps


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """The generator for one image: depends only on the seed and the id."""
    return np.random.default_rng([seed, zlib.crc32(image_id.encode())])


def corrupt_mask(label: np.ndarray, steps: list[NoiseStep], rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Applies the steps in order; each runs with probability ``step.rate``."""
    out = label
    for step in steps:
        if rng.random() < step.rate:
            out = NOISE_MODELS[step.model](out, rng, num_classes, **step.params)
    return out
