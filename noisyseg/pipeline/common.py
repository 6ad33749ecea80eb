"""What every runner shares: output directories, progress, devices, batching and reports."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch

from noisyseg import __version__
from noisyseg.errors import NoisySegError, ParameterError
from noisyseg.io.atomic import write_json
from noisyseg.pipeline.output import RUN_FILE, OutputDir  # noqa: F401  (runners import them from here)
from noisyseg.timing import Timer  # noqa: F401  (runners import it from here)

T = TypeVar("T")

# track(iterable, total, description) -> iterable; the CLI passes a Rich progress bar.
Track = Callable[[Iterable[T], int, str], Iterable[T]]


def no_track(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    return items


def select_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NoisySegError("--device cuda: expected a CUDA device, found none (use --device cpu or auto)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise NoisySegError(f"--device {device}: expected auto, cpu or cuda")
    return torch.device(device)


MAX_SEED = 2**63 - 1


def check_seed(seed: int, option: str = "--seed") -> int:
    """Seeds are integers in 0..2**63-1 (what numpy's and torch's generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"{option}: expected an integer in 0..{MAX_SEED}, found {seed!r}")
    return seed


def batched(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def group_by_size(ids: list[str], sizes: dict[str, tuple[int, int]], batch_size: int) -> list[list[str]]:
    """Batches of ids whose images share a size, in first-seen order within each size."""
    by_size: dict[tuple[int, int], list[str]] = {}
    for image_id in ids:
        by_size.setdefault(sizes[image_id], []).append(image_id)
    return [chunk for group in by_size.values() for chunk in batched(group, batch_size)]


def environment() -> dict[str, str]:
    from noisyseg.ops import has_extension

    return {"noisyseg": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "compiled_ops": str(has_extension())}


def write_report(out: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Writes report.json and, when the report names a split, report-<split>.json too (one dir
    can hold several splits' outputs, each with its own report)."""
    report = {**report, "versions": environment()}
    write_json(Path(out) / "report.json", report)
    if report.get("split"):
        write_json(Path(out) / f"report-{report['split']}.json", report)
    return report
