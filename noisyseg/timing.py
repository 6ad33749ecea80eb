"""Named wall-clock stages, shared by runners and strategies."""

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
