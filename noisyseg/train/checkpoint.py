"""Run directories: config.json, checkpoint.pt (resumable), model.pt (final weights).

Checkpoints hold only tensors and plain values, and are always loaded with ``weights_only=True``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from noisyseg.errors import InputError
from noisyseg.io.atomic import atomic_write


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        raise InputError(path, "a noisyseg checkpoint (tensors and plain values only)", f"an unloadable file ({type(e).__name__})") from None


def build_model(config: dict[str, Any]) -> torch.nn.Module:
    """Constructs the network a run config names, through the plugin host's model registry."""
    from noisyseg.plugins import get_model

    spec = get_model(config["model"])
    return spec.factory(num_classes=config["num_classes"], **config["model_params"])


def load_run(run: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained network of a run directory (in eval mode) and its config."""
    run = Path(run)
    config_path, model_path = run / "config.json", run / "model.pt"
    if not config_path.is_file():
        raise InputError(config_path, "a run directory made by 'noisyseg train'", "no config.json")
    if not model_path.is_file():
        raise InputError(model_path, "the final weights of a finished run", "no such file (is training finished?)")
    config = json.loads(config_path.read_text())
    model = build_model(config)
    state = load_checkpoint(model_path, device)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
