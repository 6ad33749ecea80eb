"""Where a run executes and what it records about that: the torch device, seeds, versions.

Shared by the training loops (``noisyseg.train``) and the runners (``noisyseg.pipeline``, which
re-exports these names), so that neither imports the other for them.
"""

from __future__ import annotations

import platform

import torch

from noisyseg import __version__
from noisyseg.errors import NoisySegError, ParameterError

MAX_SEED = 2**63 - 1


def select_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NoisySegError("--device cuda: expected a CUDA device, found none (use --device cpu or auto)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise NoisySegError(f"--device {device}: expected auto, cpu or cuda")
    return torch.device(device)


def check_seed(seed: int, option: str = "--seed") -> int:
    """Seeds are integers in 0..2**63-1 (what numpy's and torch's generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"{option}: expected an integer in 0..{MAX_SEED}, found {seed!r}")
    return seed


def environment() -> dict[str, str]:
    """Versions a report records: noisyseg, torch, python, and whether the compiled ops loaded."""
    from noisyseg.ops import has_extension

    return {"noisyseg": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "compiled_ops": str(has_extension())}
