"""Opening image files (dataset images, label and weight PNGs) so that any bad file is one
``InputError``: missing, empty, not an image, truncated, or over the decompression-bomb limit.

The limit is PIL's (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 million pixels) unless
``NOISYSEG_MAX_IMAGE_PIXELS`` sets another number of pixels (0: no limit). An image over it is
refused, not just warned about, so that a run never stalls decoding a hostile file.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from noisyseg.errors import InputError

LIMIT_VARIABLE = "NOISYSEG_MAX_IMAGE_PIXELS"
# What PIL raises for a file it cannot decode (plugins raise more than OSError).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, zlib.error)
_pil_default: list[int | None] = []


def max_image_pixels() -> int | None:
    """The pixel limit in force: ``NOISYSEG_MAX_IMAGE_PIXELS`` (0 = none) or PIL's default."""
    from PIL import Image

    if not _pil_default:
        _pil_default.append(Image.MAX_IMAGE_PIXELS)
    raw = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not raw:
        return _pil_default[0]
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"${LIMIT_VARIABLE}", "a number of pixels (0: no limit)", repr(raw)) from None
    return value if value > 0 else None


@contextmanager
def open_image(path: str | os.PathLike, expected: str) -> Iterator["Image.Image"]:  # noqa: F821
    """``PIL.Image.open(path)`` as a context manager; opening it, or decoding it inside the block,
    raises ``InputError(path, expected, ...)`` for a bad file."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(path, expected, "no such file")
    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise InputError(path, f"an image of at most {limit} pixels (the decompression-bomb limit; set "
                               f"{LIMIT_VARIABLE} to raise it)",
                         f"{pixels.group(1) if pixels else 'more'} pixels") from None
    except _DECODE_ERRORS as e:
        found = "an empty file" if path.stat().st_size == 0 else f"an unreadable file ({e or type(e).__name__})"
        raise InputError(path, expected, found) from None
