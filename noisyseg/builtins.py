"""The built-in plugin: noisyseg's own strategies and models, registered through the public hooks.

Each kind's package lists its strategies in ``SPECS``; imports happen inside the hooks so that
building the plugin manager (and ``noisyseg --help``) stays cheap.
"""

from __future__ import annotations

from noisyseg.hookspecs import hookimpl


@hookimpl
def noisyseg_strategies():
    from noisyseg.strategies import correction, detection, pseudo_labeling, weighting

    return [*detection.SPECS, *correction.SPECS, *pseudo_labeling.SPECS, *weighting.SPECS]


@hookimpl
def noisyseg_models():
    from noisyseg.models import SPECS

    return list(SPECS)
