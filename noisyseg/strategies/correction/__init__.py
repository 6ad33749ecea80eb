"""Correction strategies, one per module. ``SPECS`` lists what the built-in plugin registers.

Modules: gat.py (``gat``), gcn.py (``gcn``), prototype.py (``prototype``), mllc.py (``mllc``),
crf.py (``crf``, and ``crf_refine`` behind ``--crf``), nearest.py (``nearest``); superpixel.py holds
what ``gat`` and ``gcn`` share.
"""

from noisyseg.strategies.correction import crf, gat, gcn, mllc, nearest, prototype
from noisyseg.strategies.correction.base import Correction, CorrectionInputs, Corrector

SPECS = [gat.SPEC, gcn.SPEC, prototype.SPEC, mllc.SPEC, crf.SPEC, nearest.SPEC]

__all__ = ["Correction", "CorrectionInputs", "Corrector", "SPECS"]
