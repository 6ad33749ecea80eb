"""The plugin host: one pluggy manager, built-ins and entry points registered alike.

Use ``get_strategy(kind, name)`` / ``get_model(name)`` to look a strategy up, ``list_strategies()``
for everything registered with its provider, and ``register(plugin)`` / ``unregister(plugin)`` to
add a plugin at run time (tests do this in ``try/finally``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pluggy

from noisyseg import __version__, hookspecs
from noisyseg.errors import NoisySegError, UnknownStrategyError
from noisyseg.hookspecs import hookimpl
from noisyseg.models.spec import ModelSpec
from noisyseg.strategies.spec import KINDS, StrategySpec

ENTRY_POINT_GROUP = "noisyseg"

# Modules of built-in plugins, registered exactly as a third-party plugin would be.
BUILTIN_PLUGINS = ("noisyseg.builtins",)

__all__ = ["hookimpl", "get_manager", "get_strategy", "get_model", "list_strategies", "list_models",
           "register", "unregister", "Provided"]


@dataclass(frozen=True)
class Provided:
    """A spec together with the plugin and distribution version that provided it."""

    spec: Any
    plugin: str
    version: str


_manager: pluggy.PluginManager | None = None
_registry: dict[str, Any] | None = None


def get_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        import importlib

        pm = pluggy.PluginManager("noisyseg")
        pm.add_hookspecs(hookspecs)
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            pm.register(module, name=module_name)
        if os.environ.get("NOISYSEG_DISABLE_PLUGIN_AUTOLOAD") != "1":
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        _manager = pm
    return _manager


def register(plugin: object, name: str | None = None) -> None:
    """Registers a plugin object or module at run time."""
    get_manager().register(plugin, name=name)
    _invalidate()


def unregister(plugin: object) -> None:
    """Removes a plugin registered with ``register``."""
    get_manager().unregister(plugin)
    _invalidate()


def _invalidate() -> None:
    global _registry
    _registry = None


def _provider_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    for registered, dist in pm.list_plugin_distinfo():
        if registered is plugin:
            return dist.project_name, dist.version
    name = pm.get_name(plugin) or repr(plugin)
    if name in BUILTIN_PLUGINS:
        return "noisyseg", __version__
    return name, getattr(plugin, "__version__", "-")


def _build_registry() -> dict[str, Any]:
    pm = get_manager()
    strategies: dict[str, dict[str, Provided]] = {kind: {} for kind in KINDS}
    models: dict[str, Provided] = {}
    for hook, target in ((pm.hook.noisyseg_strategies, "strategies"), (pm.hook.noisyseg_models, "models")):
        for impl in hook.get_hookimpls():
            plugin_name, version = _provider_of(pm, impl.plugin)
            for spec in impl.function() or []:
                provided = Provided(spec, plugin_name, version)
                if target == "models":
                    if not isinstance(spec, ModelSpec):
                        raise NoisySegError(f"plugin {plugin_name}: noisyseg_models returned {type(spec).__name__}, expected ModelSpec")
                    table = models
                else:
                    if not isinstance(spec, StrategySpec):
                        raise NoisySegError(f"plugin {plugin_name}: noisyseg_strategies returned {type(spec).__name__}, expected StrategySpec")
                    table = strategies[spec.kind]
                if spec.name in table:
                    other = table[spec.name].plugin
                    raise NoisySegError(f"plugin {plugin_name}: {target[:-1]} '{spec.name}' is already registered by {other}")
                table[spec.name] = provided
    return {"strategies": strategies, "models": models}


def _registry_now() -> dict[str, Any]:
    global _registry
    if _registry is None:
        _registry = _build_registry()
    return _registry


def list_strategies(kind: str | None = None) -> list[Provided]:
    """Every registered strategy (of one kind, if given), sorted by kind then name."""
    reg = _registry_now()["strategies"]
    kinds = [kind] if kind else list(KINDS)
    return [reg[k][n] for k in kinds for n in sorted(reg[k])]


def list_models() -> list[Provided]:
    """Every registered model constructor, sorted by name."""
    reg = _registry_now()["models"]
    return [reg[n] for n in sorted(reg)]


def get_strategy(kind: str, name: str) -> StrategySpec:
    """The spec of strategy ``name`` of ``kind``; ``UnknownStrategyError`` lists the known names."""
    if kind not in KINDS:
        raise NoisySegError(f"unknown strategy kind '{kind}'; known: {', '.join(KINDS)}")
    table = _registry_now()["strategies"][kind]
    if name not in table:
        raise UnknownStrategyError(kind, name, list(table))
    return table[name].spec


def get_model(name: str) -> ModelSpec:
    """The spec of model ``name``; ``UnknownStrategyError`` lists the known names."""
    table = _registry_now()["models"]
    if name not in table:
        raise UnknownStrategyError("model", name, list(table))
    return table[name].spec
