"""Atomic file writes: a temp file in the target's directory, then ``os.replace``.

An interrupted run therefore never leaves a half-written mask or array under its final name; a
temp file left by a killed process (``.<name>.<random>.tmp``) is removed by the next run that
claims the directory (see ``noisyseg.io.claim.remove_temp_files``). Files are created with mode ``0o666`` less the
umask, like any file a program opens for writing, so outputs shared by a team stay readable.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable

TEMP_SUFFIX = ".tmp"


_TEMP_NAME = re.compile(r"^\..+\.[0-9a-z_]{8}\.tmp$")  # also matches the names tempfile.mkstemp made


def is_temp_file(name: str) -> bool:
    """True for the name of a temp file made by :func:`atomic_write`."""
    return bool(_TEMP_NAME.match(name))


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, exclusively created temp file beside ``path``; the kernel applies the umask to 0o666
    (``tempfile.mkstemp`` would make it 0o600)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Calls ``write(fileobj)`` on a temp file beside ``path`` and renames it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def replace_dir(staging: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Moves a finished directory ``staging`` to ``target`` (same filesystem), replacing what was
    there: readers see the old directory or the new one, never a mix."""
    staging, target = Path(staging), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Writes ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=_jsonable)
    return atomic_write(path, lambda f: f.write(text + "\n"), mode="w")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
