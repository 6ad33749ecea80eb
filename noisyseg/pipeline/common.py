"""What every runner shares: output directories, progress, devices, batching and reports."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch

from noisyseg import __version__
from noisyseg.errors import InputError, NoisySegError, OutputExistsError
from noisyseg.io.atomic import write_json
from noisyseg.timing import Timer  # noqa: F401  (runners import it from here)

T = TypeVar("T")
RUN_FILE = ".noisyseg-run.json"

# track(iterable, total, description) -> iterable; the CLI passes a Rich progress bar.
Track = Callable[[Iterable[T], int, str], Iterable[T]]


def no_track(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    return items


class OutputDir:
    """An output directory that is created, resumed or refused, never silently clobbered.

    A new or empty directory is started. A directory started by the same command with the same
    parameters (the split aside: one directory may hold several splits, since ids are unique
    across splits) is resumed: ``done(path)`` says which per-image files already exist, so a rerun
    skips finished images. Different parameters, or files of unknown origin, need ``force``,
    which recomputes everything.
    """

    def __init__(self, root: str | Path, command: str, params: dict[str, Any], force: bool = False):
        self.root = Path(root)
        self.force = force
        marker = self.root / RUN_FILE
        wanted = {"command": command, "params": _plain(params)}
        if self.root.exists() and not self.root.is_dir():
            raise InputError(self.root, "an output directory", "a file")
        if self.root.is_dir() and any(self.root.iterdir()) and not force:
            if not marker.is_file():
                raise OutputExistsError(self.root, "files not written by noisyseg")
            try:
                previous = json.loads(marker.read_text())
            except json.JSONDecodeError:
                previous = None
            if previous != wanted:
                what = f"a '{previous.get('command')}' run with other parameters" if isinstance(previous, dict) else "an unreadable run file"
                raise OutputExistsError(self.root, what)
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(marker, wanted)

    def done(self, path: Path) -> bool:
        """True when ``path`` exists and this run resumes (no ``force``)."""
        return not self.force and path.is_file()


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))


def select_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NoisySegError("--device cuda: expected a CUDA device, found none (use --device cpu or auto)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise NoisySegError(f"--device {device}: expected auto, cpu or cuda")
    return torch.device(device)


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
