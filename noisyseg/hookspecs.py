"""The hooks a noisyseg plugin can implement.

A plugin is any module or object with functions decorated by ``noisyseg.hookimpl``. Plugins are
registered by the ``noisyseg`` entry-point group of an installed distribution (autoloaded unless
``NOISYSEG_DISABLE_PLUGIN_AUTOLOAD=1``) or explicitly with ``noisyseg.plugins.register``. The
built-in strategies and models come through these very hooks.
"""

from __future__ import annotations

import pluggy

from noisyseg.models.spec import ModelSpec
from noisyseg.strategies.spec import StrategySpec

hookspec = pluggy.HookspecMarker("noisyseg")
hookimpl = pluggy.HookimplMarker("noisyseg")


@hookspec
def noisyseg_strategies() -> list[StrategySpec]:
    """Return the strategies this plugin provides.

    Called once, when the plugin manager is first built. Each ``StrategySpec`` names its kind
    (``detection``, ``correction``, ``pseudo-labeling`` or ``weighting``), a name unique within
    the kind, a one-line summary, its declared parameters and a factory that builds the strategy
    object from validated parameters. A name registered twice in one kind is an error.
    """


@hookspec
def noisyseg_models() -> list[ModelSpec]:
    """Return the segmentation-network constructors this plugin provides.

    Called once, when the plugin manager is first built. ``noisyseg train --model NAME`` builds
    the network with ``factory(num_classes=C, **params)``; see ``ModelSpec`` for the module's
    forward contract.
    """
