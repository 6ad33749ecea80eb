"""Finds out whether the compiled extension ``noisyseg._C`` is live.

``NOISYSEG_NO_EXT=1`` forces the pure-torch references even when the extension is built.
"""

from __future__ import annotations

import functools
import os

import torch


@functools.lru_cache(maxsize=None)
def has_extension() -> bool:
    """True when ``noisyseg._C`` loaded and its ops are registered under ``torch.ops.noisyseg``."""
    if os.environ.get("NOISYSEG_NO_EXT") == "1":
        return False
    try:
        import noisyseg._C  # noqa: F401  (loading registers the ops)
    except ImportError:
        return False
    return True


def has_op(name: str) -> bool:
    """True when a compiled kernel library registers ``noisyseg::<name>`` and it is not disabled.

    Usually that library is ``noisyseg._C``; a developer may also load an out-of-tree build with
    ``torch.ops.load_library`` (see tests/conftest.py, ``NOISYSEG_DEV_LIBS``).
    """
    if os.environ.get("NOISYSEG_NO_EXT") == "1":
        return False
    has_extension()
    try:
        getattr(torch.ops.noisyseg, name)
    except (AttributeError, RuntimeError):
        return False
    return True
