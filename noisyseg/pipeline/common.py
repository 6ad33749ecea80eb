"""What every runner shares: output directories, progress, batching and reports; devices, seeds and
versions (``noisyseg.runtime``) and stage timers (``noisyseg.timing``) are re-exported from here.
The four strategy commands (detect, correct, pseudo-label, weight) also share a skeleton built on
these, ``noisyseg.pipeline.runner``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from noisyseg.io.atomic import write_json
from noisyseg.pipeline.output import RUN_FILE, OutputDir  # noqa: F401  (runners import them from here)
from noisyseg.runtime import MAX_SEED, check_seed, environment, select_device  # noqa: F401  (likewise)
from noisyseg.timing import Timer  # noqa: F401  (runners import it from here)

T = TypeVar("T")

# track(iterable, total, description) -> iterable; the CLI passes a Rich progress bar.
Track = Callable[[Iterable[T], int, str], Iterable[T]]


def no_track(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    return items


def batched(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def group_by_size(ids: list[str], sizes: dict[str, tuple[int, int]], batch_size: int) -> list[list[str]]:
    """Batches of ids whose images share a size, in first-seen order within each size."""
    by_size: dict[tuple[int, int], list[str]] = {}
    for image_id in ids:
        by_size.setdefault(sizes[image_id], []).append(image_id)
    return [chunk for group in by_size.values() for chunk in batched(group, batch_size)]


def write_report(out: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Writes report.json and, when the report names a split, report-<split>.json too (one dir
    can hold several splits' outputs, each with its own report)."""
    report = {**report, "versions": environment()}
    write_json(Path(out) / "report.json", report)
    if report.get("split"):
        write_json(Path(out) / f"report-{report['split']}.json", report)
    return report
