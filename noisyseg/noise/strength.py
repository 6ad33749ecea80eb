"""Searching the strength scale of a noise mix for a wanted wrong-pixel rate (``corrupt --target-rate``).

``find_scale`` searches the scale s of ``scale_steps`` on a measured rate ``measure(s)``. The rate
is 0 at s = 0 (no step runs) and grows with s, though only roughly: it sums random per-image
events (a step that now runs on an image draws its random numbers, and the later steps of that
image draw others), so it moves in steps and wobbles, the more so the fewer images are measured.
The search brackets a crossing of the target and narrows it by interpolation and bisection,
moving to another crossing when the rate jumps over the target at one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

# Scales are searched to 4 decimals: finer ones change no parameter (chances have 4 decimals).
SCALE_DECIMALS = 4


@dataclass
class Search:
    """What ``find_scale`` measured and where it stopped.

    ``found``: a measured rate lies within the tolerance of the target (``best`` is it).
    ``unreachable``: even ``max_scale`` gives less than the target (``best`` is the rate there).
    Otherwise no bracket was left to split, or ``max_evals`` ran out; ``lo``/``hi`` is the last
    bracket (rates below and above the target), where the rate may jump over the target.
    """

    target: float
    tolerance: float
    points: list[tuple[float, float]] = field(default_factory=list)  # (scale, rate), in measuring order
    known: list[tuple[float, float]] = field(default_factory=list)  # given, not measured here
    found: bool = False
    unreachable: bool = False
    lo: tuple[float, float] = (0.0, 0.0)
    hi: tuple[float, float] | None = None

    @property
    def best(self) -> tuple[float, float]:
        """The (scale, rate) nearest the target (the last such point on ties)."""
        pts = self.known + self.points
        if not pts:
            return self.lo
        return min(reversed(pts), key=lambda p: abs(p[1] - self.target))


def find_scale(measure: Callable[[float], float], target: float, tolerance: float, max_scale: float,
               start: float = 1.0, known: Iterable[tuple[float, float]] = (), max_evals: int = 24) -> Search:
    """Measures scales in [0, max_scale] until one's rate is within ``tolerance`` of ``target``.

    First the scale grows from ``start`` until a rate exceeds the target (or ``max_scale`` is
    reached: unreachable). Then every pair of neighbouring measured scales whose rates lie on
    either side of the target brackets a crossing; the search narrows the bracket next to the last
    scale measured (by interpolation, or by halving when the last step did not halve its bracket),
    and when the rate jumps over the target there, moves on to another bracket (a wobbling rate
    crosses the target more than once). It gives up when no bracket can be split at 4 decimals.

    Args:
        measure: scale -> wrong-pixel rate.
        start: the first scale tried (1: the mix as given).
        known: (scale, rate) points measured before (they narrow the bracket, and are not remeasured).
        max_evals: at most this many calls of ``measure``.
    """
    search = Search(target, tolerance, known=[(float(s), float(r)) for s, r in known])
    rates: dict[float, float] = {0.0: 0.0}  # no step runs at scale 0
    for s, r in search.known:
        rates[s] = r
        if abs(r - target) <= tolerance:
            search.found = True
            return search

    def measured(s: float) -> bool:
        r = float(measure(s))
        search.points.append((s, r))
        rates[s] = r
        search.found = abs(r - target) <= tolerance
        return search.found

    # Grow the scale until a rate is above the target.
    guess = start
    while not any(r > target for r in rates.values()) and len(search.points) < max_evals:
        lo = max(rates)
        if lo >= max_scale:
            search.unreachable = True
            search.lo = (lo, rates[lo])
            return search
        s = round(min(max_scale, max(guess, lo * 1.05)), SCALE_DECIMALS)
        if s <= lo:
            s = max_scale
        if measured(s):
            return search
        if rates[s] > target:
            break
        # Aim along the line from the previous top (0 at first), growing the scale 1.05 to 4 times.
        slope = (rates[s] - rates[lo]) / (s - lo)
        guess = min(max(s + (target - rates[s]) / slope if slope > 0 else s * 2, s * 1.05), s * 4)

    last, last_width, bisect = None, math.inf, False
    while len(search.points) < max_evals:
        scales = sorted(rates)
        brackets = [(a, b) for a, b in zip(scales, scales[1:])
                    if (rates[a] - target) * (rates[b] - target) < 0 and a < round((a + b) / 2, SCALE_DECIMALS) < b]
        if not brackets:
            break
        near = [ab for ab in brackets if last in ab]
        a, b = min(near, key=lambda ab: ab[1] - ab[0]) if near else max(brackets, key=lambda ab: ab[1] - ab[0])
        search.lo, search.hi = ((a, rates[a]), (b, rates[b])) if rates[a] < target else ((b, rates[b]), (a, rates[a]))
        width = b - a
        bisect = near != [] and width > 0.5 * last_width
        if bisect:
            s = (a + b) / 2
        else:
            s = a + (target - rates[a]) * width / (rates[b] - rates[a])
            s = min(max(s, a + 0.05 * width), b - 0.05 * width)
        s = round(s, SCALE_DECIMALS)
        if not a < s < b:
            s = round((a + b) / 2, SCALE_DECIMALS)
        last, last_width = s, width
        if measured(s):
            break
    return search
