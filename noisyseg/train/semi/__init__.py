"""Semi-supervised training: one loop, its methods as presets (see ``config``), one process or many.

``train_semi(SemiConfig(...))`` is the Python API behind ``noisyseg train --unlabelled SPLIT``.
Modules: ``config`` (SemiConfig, the presets), ``loop`` (epochs, checkpoints, validation),
``step`` (one step: teacher, targets, strong views, losses), ``losses``, ``contrastive`` (U2PL),
``teacher`` (EMA), ``streams`` (data sampled by position), ``distributed``, ``validate``.
"""

from noisyseg.train.semi.config import METHODS, Plan, SemiConfig, plan
from noisyseg.train.semi.loop import train_semi

__all__ = ["METHODS", "Plan", "SemiConfig", "plan", "train_semi"]
