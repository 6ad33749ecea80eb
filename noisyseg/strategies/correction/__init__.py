"""Correction strategies, one per module. ``SPECS`` lists what the built-in plugin registers.

Modules: gat.py (``gat``), gcn.py (``gcn``), prototype.py (``prototype``), mllc.py (``mllc``),
crf.py (``crf``), nearest.py (``nearest``); superpixel.py holds what ``gat`` and ``gcn`` share,
refine.py the post-steps for any corrector (``crf_refine`` behind ``--crf``).
"""

from noisyseg.strategies.correction import crf, gat, gcn, mllc, nearest, prototype
from noisyseg.strategies.correction.base import Correction, CorrectionInputs, Corrector

SPECS = [gat.SPEC, gcn.SPEC, prototype.SPEC, mllc.SPEC, crf.SPEC, nearest.SPEC]

__all__ = ["Correction", "CorrectionInputs", "Corrector", "SPECS"]
