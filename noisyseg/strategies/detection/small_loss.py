"""small-loss (Yi et al., seed 000): a pixel's noisy label is clean when its cross-entropy under a
clean model is below θ.

θ is given, or ``auto``: picked on a calibration split whose ground truth, noisy labels and probs
exist, as the largest θ whose kept-label precision there is at least ``target_precision``.
"""

from __future__ import annotations

import math

import torch

from noisyseg.errors import ParameterError
from noisyseg.strategies.detection.base import Detection, DetectionContext, Detector, IGNORE, label_probability
from noisyseg.strategies.spec import Param, StrategySpec

_EPS = 1e-12


def pixel_loss(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy ``-log p_label`` per pixel ``(B, H, W)`` float32 (0 where ignored), and the valid mask."""
    p, valid = label_probability(probs, labels)
    loss = -torch.log(p.clamp_min(_EPS))
    return torch.where(valid, loss, torch.zeros_like(loss)), valid


def calibrate_theta(losses: torch.Tensor, correct: torch.Tensor, target_precision: float) -> tuple[float, list[dict]]:
    """The largest θ such that the pixels with loss <= θ are correct with share >= target.

    Args:
        losses: ``(P,)`` float losses of calibration pixels.
        correct: ``(P,)`` bool, noisy label == ground truth.
    Returns:
        θ (``-inf`` when no θ reaches the target) and the precision/coverage curve at each decade
        of θ plus the chosen θ.
    """
    order = torch.argsort(losses)
    sorted_loss = losses[order].double()
    hits = torch.cumsum(correct[order].double(), 0)
    kept = torch.arange(1, losses.numel() + 1, dtype=torch.float64)
    # Evaluate only at the last occurrence of each distinct loss: "loss <= θ" keeps all ties.
    last = torch.ones_like(sorted_loss, dtype=torch.bool)
    last[:-1] = sorted_loss[1:] != sorted_loss[:-1]
    precision = hits / kept
    ok = last & (precision >= target_precision)
    theta = float(sorted_loss[ok].max()) if ok.any() else -math.inf
    total = losses.numel()

    def point(t: float) -> dict:
        n = int(torch.searchsorted(sorted_loss, torch.tensor([t], dtype=torch.float64), right=True))
        return {"theta": t, "precision": float(hits[n - 1] / n) if n else float("nan"), "coverage": n / total}

    grid = [10.0 ** e for e in range(-6, 2)]
    curve = [point(t) for t in sorted(set(grid + ([theta] if math.isfinite(theta) else [])))]
    return theta, curve


class SmallLoss(Detector):
    def __init__(self, theta: float | str = 0.001, calibrate_split: str | None = None, target_precision: float = 0.97):
        if theta == "auto" and not calibrate_split:
            raise ParameterError("strategy 'small-loss': theta=auto needs -p calibrate_split=SPLIT "
                                 "(a split with ground truth, noisy labels and probs)")
        self.theta = theta
        self.calibrate_split = calibrate_split
        self.target_precision = target_precision

    def fit(self, ctx: DetectionContext) -> dict:
        if self.theta != "auto":
            return {"theta": self.theta}
        losses, correct = [], []
        for batch in ctx.calibration_batches(self.calibrate_split):
            loss, valid = pixel_loss(batch.probs, batch.labels)
            valid &= batch.gt != IGNORE
            losses.append(loss[valid].cpu())
            correct.append((batch.labels == batch.gt)[valid].cpu())
        if not losses or sum(x.numel() for x in losses) == 0:
            raise ParameterError(f"strategy 'small-loss': calibration split '{self.calibrate_split}' has no pixel "
                                 "with both a ground-truth and a noisy label")
        losses_t, correct_t = torch.cat(losses), torch.cat(correct)
        theta, curve = calibrate_theta(losses_t, correct_t, self.target_precision)
        self.theta = theta
        return {"theta": theta, "calibrate_split": self.calibrate_split, "target_precision": self.target_precision,
                "calibration_pixels": int(losses_t.numel()),
                "calibration_noisy_precision": float(correct_t.double().mean()), "curve": curve}

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        if self.theta == "auto":
            raise RuntimeError("small-loss: call fit() to calibrate theta=auto before detect()")
        loss, valid = pixel_loss(probs, labels)
        return Detection(valid & (loss > float(self.theta)), loss)


SPEC = StrategySpec(
    kind="detection",
    name="small-loss",
    summary="flag pixels whose cross-entropy under a clean model exceeds θ (θ fixed or calibrated on a split with GT)",
    factory=SmallLoss,
    params=(
        Param("theta", float, 0.001, "loss threshold, or 'auto' to calibrate on calibrate_split", min=0.0, special=("auto",)),
        Param("calibrate_split", str, None, "split with GT, noisy labels and probs used by theta=auto"),
        Param("target_precision", float, 0.97, "kept-label precision theta=auto aims for", min=0.0, max=1.0),
    ),
)
