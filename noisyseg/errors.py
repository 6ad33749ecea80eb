"""Typed errors. The library raises these; the CLI prints their one-line message and exits 2.

Every message names the file (or option), what was expected and what was found, so that a user can
fix the input without reading a traceback.
"""

from __future__ import annotations

import os


class NoisySegError(Exception):
    """Base class of every error a user can cause and fix."""

    exit_code = 2


class InputError(NoisySegError):
    """A file or directory does not hold what the data contract says it must.

    Args:
        path: the offending file or directory.
        expected: what the contract requires, e.g. ``"uint8 class ids in 0..10 or 255"``.
        found: what was there, e.g. ``"value 17"``.
    """

    def __init__(self, path: str | os.PathLike, expected: str, found: str):
        self.path, self.expected, self.found = str(path), expected, found
        super().__init__(f"{self.path}: expected {expected}, found {found}")


class ParameterError(NoisySegError):
    """A strategy parameter or command option is invalid."""


class UnknownStrategyError(NoisySegError):
    """No strategy of that kind and name is registered."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        listed = ", ".join(sorted(known)) or "(none registered)"
        super().__init__(f"unknown {kind} strategy '{name}'; known: {listed}")


class UnknownModelError(UnknownStrategyError):
    """No model of that name is registered (``noisyseg train --model``).

    A subclass of ``UnknownStrategyError`` (models and strategies share one registry), with
    ``kind == "model"``; its message reads ``unknown model 'X' (known: a, b, c)``.
    """

    def __init__(self, name: str, known: list[str]):
        self.kind, self.name, self.known = "model", name, known
        listed = ", ".join(sorted(known)) or "none registered"
        NoisySegError.__init__(self, f"unknown model '{name}' (known: {listed})")


class OutputExistsError(NoisySegError):
    """Refusing to overwrite an existing output without ``--force``."""

    def __init__(self, path: str | os.PathLike, what: str = "a previous run's output"):
        super().__init__(f"{path}: expected an empty or new output directory, found {what} "
                         "(pass --force to start over; the same command with the same parameters resumes)")
