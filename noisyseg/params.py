"""Typed parameters of strategies and models, and the ``-p key=value`` options that set them.

``Param`` declares one parameter (type, default, bounds, choices); ``resolve_params`` validates a
dict of given values against declared ones; ``parse_assignments`` turns repeated ``-p key=value``
command-line options into that dict. Strategy specs (``noisyseg.strategies.spec``), model specs
(``noisyseg.models.spec``) and the CLI share these; nothing here knows about either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from noisyseg.errors import ParameterError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One declared parameter of a strategy or model.

    Args:
        name: key used on the command line (``-p name=value``) and as the factory's keyword.
        type: ``int``, ``float``, ``str`` or ``bool``.
        default: value when the user gives none (``None`` means optional with no value).
        help: one line for ``noisyseg plugins``.
        min, max: inclusive bounds for numbers.
        choices: allowed values for strings.
        special: extra string values accepted besides the type, e.g. ``("auto",)``.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    special: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"{self.name}: {self.type.__name__}"
        if self.special:
            text += "|" + "|".join(self.special)
        text += f" = {self.default!r}"
        if self.min is not None or self.max is not None:
            text += f" in [{'-inf' if self.min is None else self.min}, {'inf' if self.max is None else self.max}]"
        if self.choices:
            text += f" one of {{{', '.join(self.choices)}}}"
        return text

    def parse(self, raw: Any, strategy: str) -> Any:
        """Converts and checks a value (a string from the command line, or a Python value)."""
        where = f"parameter '{self.name}' of {strategy}"
        if isinstance(raw, str) and raw in self.special:
            return raw
        try:
            if self.type is bool:
                if isinstance(raw, bool):
                    value = raw
                elif str(raw).lower() in _TRUE:
                    value = True
                elif str(raw).lower() in _FALSE:
                    value = False
                else:
                    raise ValueError
            elif self.type is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value = int(raw)
            elif self.type is float:
                value = float(raw)
            else:
                value = self.type(raw)
        except (TypeError, ValueError):
            extra = f" or {'/'.join(self.special)}" if self.special else ""
            raise ParameterError(f"{where}: expected {self.type.__name__}{extra}, found {raw!r}") from None
        if self.type in (int, float):
            if value != value:  # NaN
                raise ParameterError(f"{where}: expected a number, found NaN")
            if self.min is not None and value < self.min or self.max is not None and value > self.max:
                raise ParameterError(f"{where}: expected a value in [{self.min}, {self.max}], found {value}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"{where}: expected one of {', '.join(self.choices)}, found {value!r}")
        return value


def resolve_params(owner: str, params: tuple[Param, ...], given: dict[str, Any] | None) -> dict[str, Any]:
    """Declared defaults overridden by validated ``given`` values; unknown keys raise ``ParameterError``."""
    given = dict(given or {})
    known = {p.name: p for p in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParameterError(f"{owner} has no parameter '{unknown[0]}'; its parameters: {', '.join(known) or 'none'}")
    return {name: (p.parse(given[name], owner) if name in given else p.default) for name, p in known.items()}


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """Turns repeated ``-p key=value`` options into a dict, rejecting malformed ones and a key
    given twice (which of two values was meant is not for the host to guess)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p {item}: expected key=value, found no '='" if not sep else f"-p {item}: empty key")
        key = key.strip()
        if key in out:
            raise ParameterError(f"-p {item}: expected each key once, found '{key}' also as -p {key}={out[key]}")
        out[key] = value.strip()
    return out
