"""Claiming an output directory for one run, and giving the claim back when the run fails early.

A ``Claim`` holds the directory's lock (``noisyseg.io.lock``) while a run writes into it. The run
names the files that stake its claim (a run marker, a training config) with ``stake``; when it
then fails, or is interrupted, before writing any output (``written()`` is false), those files are
removed again, and so is the directory itself when this claim created it and nothing else is left
in it. A corrected rerun into the same ``--out`` then starts as if the failed run had never been.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from noisyseg.errors import InputError
from noisyseg.io.atomic import is_temp_file
from noisyseg.io.lock import LOCK_FILE, locked


class Claim:
    """A context manager around a run that writes into ``root``.

    Args:
        root: the output directory (created, with missing parents, when absent).
        command: named in the error another process gets while this claim is held.
        written: says whether the run has written an output of its own yet.
    """

    def __init__(self, root: str | os.PathLike, command: str, written: Callable[[], bool]):
        self.root, self.command, self.written = Path(root), command, written
        self.staked: list[Path] = []
        self._created: list[Path] = []
        self._stack = ExitStack()

    def __enter__(self) -> "Claim":
        if self.root.exists() and not self.root.is_dir():
            raise InputError(self.root, "an output directory", "a file")
        missing = self.root.absolute()
        while not missing.exists():
            self._created.append(missing)
            missing = missing.parent
        try:
            self._stack.enter_context(locked(self.root, self.command))
        except OSError as e:  # a parent that is a file, no permission, a full disk
            raise InputError(self.root, "an output directory noisyseg can create and write",
                             e.strerror or type(e).__name__) from None
        return self

    def stake(self, path: str | os.PathLike) -> None:
        """``path`` (written by this run) stakes the claim: it goes when the claim is given back."""
        self.staked.append(Path(path))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and not self.written():
                self.give_back()
        finally:
            self._stack.close()

    def give_back(self) -> None:
        """Removes the staked files, then the directories this claim created if nothing else is in them."""
        for path in self.staked:
            path.unlink(missing_ok=True)
        for directory in self._created:  # deepest first
            try:
                if any(p.name != LOCK_FILE for p in directory.iterdir()):
                    return
                (directory / LOCK_FILE).unlink(missing_ok=True)
                directory.rmdir()
            except OSError:
                return


def remove_temp_files(root: Path) -> None:
    """Removes the temp files that killed writers left in ``root`` and its subdirectories. Call it
    holding ``root``'s claim (so no live writer owns them), on a directory noisyseg wrote."""
    for directory in [root, *(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]:
        for entry in os.scandir(directory):
            if is_temp_file(entry.name) and entry.is_file(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)
