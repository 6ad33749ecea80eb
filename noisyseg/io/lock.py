"""An advisory lock on a run directory, so that two processes never write one run at once.

The lock is an ``flock`` on ``DIR/.lock``: the kernel drops it when its process ends, however it
ends, so an interrupted run never leaves a stale lock behind and a rerun resumes at once. Where
``fcntl`` does not exist (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from noisyseg.errors import NoisySegError

LOCK_FILE = ".lock"


@contextmanager
def locked(directory: str | os.PathLike, command: str) -> Iterator[None]:
    """Holds ``directory``'s lock (creating the directory) while the block runs; raises
    ``NoisySegError`` at once when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise NoisySegError(f"{directory}: expected no other process writing this run, found another "
                                f"'{command}' running on it (let it finish, or pick another --out)") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def has_files(directory: Path) -> bool:
    """True when ``directory`` holds anything besides its lock file."""
    return any(p.name != LOCK_FILE for p in directory.iterdir())
