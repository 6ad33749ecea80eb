"""Noise specs: ``model[:key=value,...]`` steps joined by ``+``, applied in order.

Every step accepts ``rate`` (chance that it runs on a given image, default 1) besides its model's
own parameters. Example: ``cam:rate=0.5,scale=8+boundary:k=6+drop:p=0.3+swap:p=0.15``.
Randomness is drawn from one generator per image seeded by (seed, id), so results do not depend
on the order or the subset of images processed.

A mix can be made stronger or weaker by one scale factor (``scale_steps``; what it multiplies in
each model is ``STRENGTHS``), which ``corrupt --target-rate`` searches to hit a wrong-pixel rate.
"""

from __future__ import annotations

import inspect
import math
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

    def scaled(self, s: float) -> "NoiseStep":
        """This step at ``s`` times its strength (``STRENGTHS``): ``s = 0`` never changes a pixel,
        ``s = 1`` is the step itself (its defaults spelled out), larger ``s`` corrupts more."""
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"strength scale must be a finite number >= 0, got {s!r}")
        known = _model_params(self.model)
        params = dict(self.params)
        for key, kind in STRENGTHS.get(self.model, {}).items():
            params[key] = _scale_value(params.get(key, known[key].default), kind, s)
        return NoiseStep(self.model, _scale_value(self.rate, "chance", s), params)

    def __str__(self) -> str:
        args = [f"rate={self.rate:g}"] if self.rate != 1.0 else []
        args += [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items()]
        return self.model + (":" + ",".join(args) if args else "")


def _model_params(model: str) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(NOISE_MODELS[model])
    return {n: p for n, p in list(sig.parameters.items())[3:]}


# What each numeric parameter may be: (description, test). Probabilities and shares lie in [0, 1].
_VALID: dict[str, tuple[str, Callable[[float], bool]]] = {
    "rate": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "p": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "max_share": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "shrink": ("in (0, 1]", lambda v: 0 < v <= 1),
    "k": (">= 1", lambda v: v >= 1),
    "scale": (">= 1", lambda v: v >= 1),
    "sigma": ("> 0", lambda v: v > 0),
}


# What "stronger" means for each model: the parameters that ``NoiseStep.scaled(s)`` multiplies by s.
# A "chance" (every step's ``rate`` too) is multiplied and clipped to [0, 1], to 4 decimals; a size
# in "pixels" is multiplied and rounded, at least 1. The other parameters shape the noise and stay
# as given: ``max_share`` and ``background`` say which objects go, and cam's ``scale``, ``sigma``
# and ``shrink`` how coarse a CAM is; a coarser one is not simply more wrong (past a few cells per
# image every pixel takes the largest class, and the later steps find nothing left to corrupt), so
# cam grows stronger only by running on more images.
STRENGTHS: dict[str, dict[str, str]] = {
    "boundary": {"p": "chance", "k": "pixels"},
    "drop": {"p": "chance"},
    "swap": {"p": "chance"},
    "cam": {},
}


def _scale_value(value: float, kind: str, s: float) -> float | int:
    if kind == "chance":  # 4 decimals print exactly with :g, so str(step) parses back to the same step
        return round(min(1.0, max(0.0, value * s)), 4)
    return max(1, int(math.floor(value * s + 0.5)))


def scale_steps(steps: list[NoiseStep], s: float) -> list[NoiseStep]:
    """The mix at ``s`` times its strength, one scale for every step (see ``STRENGTHS``)."""
    return [step.scaled(s) for step in steps]


def saturation_scale(steps: list[NoiseStep]) -> float:
    """The smallest scale at which every chance of the mix is 1 (beyond it only sizes grow)."""
    known = {step.model: _model_params(step.model) for step in steps}
    chances = [step.rate for step in steps]
    chances += [step.params.get(key, known[step.model][key].default) for step in steps
                for key, kind in STRENGTHS.get(step.model, {}).items() if kind == "chance"]
    positive = [c for c in chances if c > 0]
    return max((1 / c for c in positive), default=1.0)


def _number(spec: str, model: str, key: str, value: str, default: int | float) -> int | float:
    """``value`` as the type of the parameter's default, within its valid range (if it has one)."""
    want, valid = _VALID.get(key, ("", lambda v: True))
    integer = isinstance(default, int)
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number) or (integer and not number.is_integer()) or not valid(number):
        kind = "an integer" if integer else "a number"
        raise ParameterError(f"--noise {spec}: expected {kind}{' ' + want if want else ''} for '{key}' of "
                             f"'{model}', found '{value}'")
    return int(number) if integer else number


def parse_noise_spec(spec: str) -> list[NoiseStep]:
    """Parses a spec string; unknown models or parameters, repeated parameters and values out of
    range (a probability outside [0, 1] or NaN, a shift below 1) raise ``ParameterError``."""
    steps = []
    for part in filter(None, (s.strip() for s in spec.split("+"))):
        name, _, args = part.partition(":")
        name = name.strip()
        if name not in NOISE_MODELS:
            raise ParameterError(f"--noise {spec}: unknown noise model '{name}'; known: {', '.join(NOISE_MODELS)}")
        known = _model_params(name)
        given: dict[str, str] = {}
        for arg in filter(None, (a.strip() for a in args.split(","))):
            key, sep, value = arg.partition("=")
            if not sep:
                raise ParameterError(f"--noise {spec}: expected key=value in '{part}', found '{arg}'")
            key = key.strip()
            if key != "rate" and key not in known:
                raise ParameterError(f"--noise {spec}: model '{name}' has no parameter '{key}'; "
                                     f"its parameters: rate, {', '.join(known)}")
            if key in given:
                raise ParameterError(f"--noise {spec}: expected each parameter of '{name}' once, found '{key}' twice")
            given[key] = value.strip()
        rate = _number(spec, name, "rate", given.pop("rate"), 1.0) if "rate" in given else 1.0
        params = {key: _number(spec, name, key, value, known[key].default)
                  if isinstance(known[key].default, (int, float)) else value for key, value in given.items()}
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
