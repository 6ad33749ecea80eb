"""Run directories: config.json, checkpoint.pt (resumable), model.pt (final weights).

Checkpoints hold only tensors and plain values, and are always loaded with ``weights_only=True``.
Whatever a run directory holds that does not fit (a damaged or edited config.json, weights of
another model) is an ``InputError`` naming the file.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch

from noisyseg.errors import InputError, NoisySegError, ParameterError
from noisyseg.io.atomic import atomic_write
from noisyseg.io.jsonfile import read_json

_STATE_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, IndexError)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols; the file is judged below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        raise InputError(path, "a noisyseg checkpoint (tensors and plain values only)", f"an unloadable file ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise InputError(path, "a noisyseg checkpoint (a dict of tensors)", type(state).__name__)
    return state


def build_model(config: dict[str, Any]) -> torch.nn.Module:
    """Constructs the network a run config names, through the plugin host's model registry (in
    channels-last memory format when its spec asks for it); a constructor refusing its parameters
    is a ``ParameterError``."""
    from noisyseg.plugins import get_model

    spec = get_model(config["model"])
    try:
        model = spec.factory(num_classes=config["num_classes"], **config["model_params"])
    except (TypeError, ValueError) as e:
        raise ParameterError(f"model '{spec.name}': {e}") from None
    return model.to(memory_format=torch.channels_last) if spec.channels_last else model


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """``model.load_state_dict(state["model"])``, or an ``InputError`` when they do not fit."""
    try:
        model.load_state_dict(state["model"])
    except _STATE_ERRORS as e:
        raise InputError(path, "weights of the model that config.json describes", _first_problem(e)) from None


def resume(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, data_rng: torch.Generator,
           device: torch.device | str) -> tuple[int, list[float]]:
    """Restores a training checkpoint into ``model``, ``optimizer`` and the RNGs; returns
    (epochs done, loss history)."""
    state = load_checkpoint(path, device)
    load_weights(model, state, path)
    try:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        data_rng.set_state(state["data_rng"])
        return int(state["epoch"]), [float(x) for x in state["history"]]
    except _STATE_ERRORS as e:
        raise InputError(path, "a training checkpoint of this run", _first_problem(e)) from None


def read_config(run: Path) -> dict[str, Any]:
    """A run directory's config.json, checked for what building its model needs."""
    path = run / "config.json"
    if not path.is_file():
        raise InputError(path, "a run directory made by 'noisyseg train'", "no config.json")
    config = read_json(path, "a run config written by 'noisyseg train'")
    checks = {"model": str, "num_classes": int, "model_params": dict}
    bad = next((k for k, kind in checks.items() if not isinstance(config, dict) or not isinstance(config.get(k), kind)), None)
    if bad is not None:
        found = repr(config.get(bad))[:60] if isinstance(config, dict) else type(config).__name__
        raise InputError(path, f"a run config with '{bad}' ({checks[bad].__name__})", found)
    return config


def load_run(run: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained network of a run directory (in eval mode) and its config."""
    run = Path(run)
    config = read_config(run)
    model_path = run / "model.pt"
    if not model_path.is_file():
        raise InputError(model_path, "the final weights of a finished run", "no such file (is training finished?)")
    try:
        model = build_model(config)
    except NoisySegError as e:
        raise InputError(run / "config.json", "a model noisyseg can build", str(e)) from None
    load_weights(model, load_checkpoint(model_path, device), model_path)
    return model.to(device).eval(), config


def _first_problem(e: Exception) -> str:
    """The first line that says what is wrong in a (possibly multi-line) torch error."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith("Error(s) in loading")), lines[0] if lines else "")
    return f"{type(e).__name__}: {detail[:160]}" if detail else type(e).__name__
