"""Named wall-clock stages, shared by runners, training loops and strategies.

``Timer`` is the one stage timer: runners report ``timer.seconds``; correction strategies get one
as ``times`` in ``correct_batch`` (``noisyseg.strategies.correction.base.StageTimer`` is the same
class under its old name).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class Timer:
    """``with timer("predict"): ...`` adds the stage's wall-clock seconds to ``timer.seconds["predict"]``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def add(self, seconds: dict[str, float]) -> None:
        """Adds ``seconds`` (stage -> seconds, e.g. another timer's or a strategy's timings) to these."""
        for stage, sec in seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + sec

    def iterate(self, items: Iterable[T], stage: str) -> Iterator[T]:
        """Yields from ``items``, adding the time spent producing each item (e.g. reading files) to ``stage``."""
        it = iter(items)
        while True:
            with self(stage):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item
