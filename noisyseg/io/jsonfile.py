"""Reading the JSON files noisyseg and its users write (dataset.json, tags.json, run configs, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from noisyseg.errors import InputError


def read_json(path: str | Path, expected: str = "valid JSON") -> Any:
    """The parsed content of ``path``; a file that is not UTF-8 JSON is one ``InputError`` line
    naming it, ``expected`` and where the parser stopped."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, expected, f"a parse error ({getattr(e, 'msg', e)})") from None
