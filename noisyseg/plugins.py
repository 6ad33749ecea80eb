"""The plugin host: one pluggy manager, built-ins and entry points registered alike.

Use ``get_strategy(kind, name)`` / ``get_model(name)`` to look a strategy up, ``list_strategies()``
for everything registered with its provider, and ``register(plugin)`` / ``unregister(plugin)`` to
add a plugin at run time (tests do this in ``try/finally``).

An installed plugin that fails to import, to register or in its hook is skipped with one
``PluginWarning`` naming it (the CLI prints it as one ``warning:`` line), so that one broken plugin
never breaks the commands that do not need it. ``NOISYSEG_DISABLE_PLUGIN_AUTOLOAD`` (1, true, yes
or on) loads no installed plugin at all.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import pluggy

from noisyseg import __version__, hookspecs
from noisyseg.errors import NoisySegError, UnknownModelError, UnknownStrategyError
from noisyseg.hookspecs import hookimpl
from noisyseg.models.spec import ModelSpec
from noisyseg.strategies.spec import KINDS, StrategySpec

ENTRY_POINT_GROUP = "noisyseg"
AUTOLOAD_VARIABLE = "NOISYSEG_DISABLE_PLUGIN_AUTOLOAD"


class PluginWarning(UserWarning):
    """A plugin that could not be loaded, or whose hook failed, and was skipped."""

# Modules of built-in plugins, registered exactly as a third-party plugin would be.
BUILTIN_PLUGINS = ("noisyseg.builtins",)

__all__ = ["hookimpl", "get_manager", "get_strategy", "get_model", "list_strategies", "list_models",
           "register", "unregister", "Provided", "PluginWarning", "autoload_disabled"]


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
        if not autoload_disabled():
            _load_entry_points(pm)
        _manager = pm
    return _manager


def autoload_disabled() -> bool:
    """True when ``NOISYSEG_DISABLE_PLUGIN_AUTOLOAD`` is 1, true, yes or on (any case)."""
    return os.environ.get(AUTOLOAD_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Loads each entry point of the group on its own: one that fails to import or to register is
    skipped with a ``PluginWarning`` naming it, and the others load."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(ep.name):
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
        except Exception as e:
            _skip(ep.name, f"failed to load ({ep.value}): {type(e).__name__}: {e}")


def _skip(plugin: str, why: str) -> None:
    first_line = why.strip().splitlines()[0] if why.strip() else why
    warnings.warn(f"plugin '{plugin}' {first_line}; skipped (set {AUTOLOAD_VARIABLE}=1 to load no plugins)",
                  PluginWarning, stacklevel=3)


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
            try:
                specs = list(impl.function() or [])
            except Exception as e:
                _skip(plugin_name, f"failed in {impl.function.__name__}: {type(e).__name__}: {e}")
                continue
            for spec in specs:
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
    """The spec of model ``name``; ``UnknownModelError`` lists the known names."""
    table = _registry_now()["models"]
    if name not in table:
        raise UnknownModelError(name, list(table))
    return table[name].spec
