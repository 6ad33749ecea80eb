"""The EMA teacher: its decay schedule, its update, and how it runs.

U2PL (and mean teacher): after every optimiser step, θ_t <- d θ_t + (1 - d) θ_s with
d = min(1 - 1 / (k + 1), d_max), k the number of updates so far. The first update (d = 0) makes the
teacher a copy of the student, buffers included; later updates average parameters only, and the
teacher's BatchNorm statistics come from its own passes, which run BatchNorm as in training
(batch statistics, running statistics updated) and everything else as in evaluation (no dropout,
no stochastic depth), under ``no_grad``.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn


def ema_decay(updates: int, max_decay: float = 0.99) -> float:
    """The decay of update number ``updates`` (0-based): ``min(1 - 1 / (updates + 1), max_decay)``.

    Example:
        >>> [ema_decay(k) for k in (0, 1, 3)], ema_decay(10**6)
        ([0.0, 0.5, 0.75], 0.99)
    """
    if updates < 0:
        raise ValueError(f"ema_decay: updates must be >= 0, got {updates}")
    return min(1.0 - 1.0 / (updates + 1), max_decay)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float, copy_buffers: bool = False) -> None:
    """θ_t <- decay θ_t + (1 - decay) θ_s for every parameter (matched by order); with
    ``copy_buffers`` the student's floating buffers (BatchNorm statistics) are copied as well."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
    if copy_buffers:
        for t, s in zip(teacher.buffers(), student.buffers()):
            t.copy_(s)


@contextlib.contextmanager
def teacher_mode(model: nn.Module):
    """Runs ``model`` with BatchNorm in training mode and every other module in eval mode, under
    ``no_grad``; restores the modes afterwards. The model's own ``train()`` is called first, so a
    model that keeps some BatchNorm frozen (a pretrained backbone) keeps it frozen."""
    modes = {m: m.training for m in model.modules()}
    model.train()
    for m in model.modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.training = False
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, mode in modes.items():
            m.training = mode
