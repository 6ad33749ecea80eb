"""How a strategy describes itself: its kind, name, one-line summary and typed parameters.

A plugin returns ``StrategySpec`` objects from the ``noisyseg_strategies`` hook. The host validates
user parameters (``-p key=value``) against ``params`` before calling ``factory(**params)``, which
builds the strategy object. The strategy object's interface depends on its kind; see
``noisyseg/strategies/<kind>/base.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Param, resolve_params and parse_assignments live in noisyseg.params; plugins that import them
# from here keep working.
from noisyseg.params import Param, parse_assignments, resolve_params  # noqa: F401

KINDS = ("detection", "correction", "pseudo-labeling", "weighting")

__all__ = ["KINDS", "Param", "StrategySpec", "parse_assignments", "resolve_params"]


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy.

    Args:
        kind: one of ``KINDS``.
        name: unique within its kind, lower-case with dashes (``small-loss``).
        summary: one line for ``noisyseg plugins``.
        factory: called with the validated parameters as keywords; returns the strategy object.
        params: the declared parameters.
    """

    kind: str
    name: str
    summary: str
    factory: Callable[..., Any]
    params: tuple[Param, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"strategy '{self.name}': kind must be one of {KINDS}, got {self.kind!r}")

    def resolve(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validated parameters: declared defaults overridden by ``given``; unknown keys are errors."""
        return resolve_params(f"strategy '{self.name}'", self.params, given)

    def build(self, given: dict[str, Any] | None = None) -> Any:
        """Validates ``given`` and returns ``factory(**params)``."""
        return self.factory(**self.resolve(given))
