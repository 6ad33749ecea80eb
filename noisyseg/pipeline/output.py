"""Per-image output directories that are started, resumed or refused, and never mix two runs.

```
DIR/.noisyseg-run.json   {"command", "params", "run": id}: who writes here, with which parameters
DIR/.noisyseg-done       "run <id>", then the path (relative to DIR) of each output file finished
```
A new or empty directory is started under a fresh run id. A directory started by the same
command with the same parameters (the split aside: one directory may hold several splits, since
ids are unique across splits) is resumed under its run id: ``done(path)`` is true only for the
files that run recorded, so a rerun skips finished images and never takes a file it did not write
for a finished one. Other parameters, or files of unknown origin, are refused unless ``force``.

``force`` starts a new run id, then deletes the files recorded under the run it replaces and that
run's reports; a ``force`` run killed half-way leaves the new parameters in the marker, and the
next run with them finishes the deleting, so no run ever resumes on the replaced run's files.

While a run holds the directory, another process's run on it is refused at once (the lock of
``noisyseg.io.lock``); a run that fails before finishing any file gives its claim back (see
``noisyseg.io.claim``), so the corrected command can be rerun as it is.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from noisyseg.errors import InputError, OutputExistsError
from noisyseg.io.atomic import atomic_write, write_json
from noisyseg.io.claim import Claim, remove_temp_files
from noisyseg.io.lock import has_files

RUN_FILE = ".noisyseg-run.json"
DONE_FILE = ".noisyseg-done"


class OutputDir:
    """Claims ``root`` for ``command`` with ``params`` (see the module's docstring).

    Use it as a context manager around the run, so that the lock is released and a claim that
    never got an output is given back; call ``record`` with an image's files once all are written.
    """

    def __init__(self, root: str | os.PathLike, command: str, params: dict[str, Any], force: bool = False):
        self.root = Path(root)
        self.force = force
        self._done: set[str] = set()
        self._recorded = 0
        self._journal = None
        self._claim = Claim(self.root, f"noisyseg {command}", written=lambda: self._recorded > 0)
        self._claim.__enter__()
        try:
            self._start({"command": command, "params": _plain(params)}, force)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def _start(self, wanted: dict[str, Any], force: bool) -> None:
        marker, journal = self.root / RUN_FILE, self.root / DONE_FILE
        previous, same = _previous_run(self.root, wanted, force)
        run = previous.get("run") if same and not force else None
        if not isinstance(run, str) or not run:
            run = uuid.uuid4().hex
            if previous is None or force:  # staked before the write: an interrupt in it still gives it back
                self._claim.stake(marker)
            write_json(marker, {**wanted, "run": run})
        if previous is not None:
            remove_temp_files(self.root)
        recorded_run, files = _read_journal(journal)
        if recorded_run == run:
            self._done = files
        else:  # a new run: what an earlier run recorded here is not this run's
            self._delete(files, reports=previous is not None)
            self._claim.stake(journal)
            atomic_write(journal, lambda f: f.write(f"run {run}\n"), mode="w")
        self._journal = open(journal, "a")

    def _delete(self, files: set[str], reports: bool) -> None:
        """Deletes the outputs an earlier run recorded (only paths inside the directory) and, when
        noisyseg wrote the directory, its reports."""
        paths = [self.root / rel for rel in files if not os.path.isabs(rel) and ".." not in Path(rel).parts]
        if reports:
            paths += [*self.root.glob("report.json"), *self.root.glob("report-*.json")]
        for path in paths:
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)

    def done(self, path: str | os.PathLike) -> bool:
        """True when this run (or the run it resumes) recorded ``path`` as finished and it exists."""
        return self._relative(path) in self._done and Path(path).is_file()

    def record(self, *paths: str | os.PathLike) -> None:
        """Records finished output files (written in full, e.g. all of one image's files)."""
        lines = [self._relative(p) for p in paths]
        self._done.update(lines)
        self._journal.write("".join(f"{line}\n" for line in lines))
        self._journal.flush()
        self._recorded += 1

    def _relative(self, path: str | os.PathLike) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def close(self) -> None:
        """Releases the directory (what leaving the ``with`` block does)."""
        self.__exit__(None, None, None)

    def __enter__(self) -> "OutputDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self._claim.__exit__(exc_type, exc, tb)


def _previous_run(root: Path, wanted: dict[str, Any], force: bool) -> tuple[Any, bool]:
    """The marker of ``root`` and whether it is the run ``wanted``; raises ``OutputExistsError``
    when ``root`` holds another run's or unknown files and ``force`` is not given."""
    previous = _read_marker(root / RUN_FILE)
    same = isinstance(previous, dict) and {k: v for k, v in previous.items() if k != "run"} == wanted
    if root.is_dir() and has_files(root) and not force and not same:
        if previous is None:
            raise OutputExistsError(root, "files not written by noisyseg")
        what = f"a '{previous.get('command')}' run with other parameters" if isinstance(previous, dict) \
            else "an unreadable run file"
        raise OutputExistsError(root, what)
    return previous, same


def replacing_marker(root: str | os.PathLike, command: str, params: dict[str, Any], force: bool = False) -> dict:
    """For commands that build a whole directory elsewhere and swap it in (``report``): refuses
    ``root`` like :class:`OutputDir` would, writes nothing there, and returns the run marker to put
    in the new directory."""
    wanted = {"command": command, "params": _plain(params)}
    if Path(root).exists() and not Path(root).is_dir():
        raise InputError(root, f"a directory for the {command} output", "a file")
    _previous_run(Path(root), wanted, force)
    return {**wanted, "run": uuid.uuid4().hex}


def _read_marker(path: Path) -> Any:
    """The run marker's content; None without one; ``"unreadable"`` for a damaged one."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "unreadable"


def _read_journal(path: Path) -> tuple[str | None, set[str]]:
    """(run id, recorded paths) of a journal; a last line cut short by a kill is left out."""
    if not path.is_file():
        return None, set()
    lines = path.read_text(errors="replace").split("\n")[:-1]
    if not lines or not lines[0].startswith("run "):
        return None, set()
    return lines[0][4:], {line for line in lines[1:] if line}


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))
