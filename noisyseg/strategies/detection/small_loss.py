"""small-loss (Yi et al., "Learning from Pixel-Level Label Noise"): a pixel's noisy label is clean when its
cross-entropy under a clean model is below θ.

θ is given, or ``auto``: picked on a calibration split whose ground truth, noisy labels and probs
exist, as the largest θ whose kept-label precision there is at least ``target_precision``. The
calibration streams losses into a fixed-size histogram (float16 precision), so its memory does
not grow with the split.

That θ meets the target on the calibration split; on other images from the same source it meets
it about half the time. ``confidence`` > 0 asks for a bound instead: θ is lowered until the
(1 - ``confidence``) quantile of the kept-label precision over image bootstrap resamples of the
calibration split (images drawn with replacement, 1000 times, seeded) reaches the target. Images
are the unit because a pixel's errors come in regions with its neighbours'. For this each
calibration image keeps its own histogram at 1/16 of float16's resolution (4096 buckets, 64
KB per image).

``window`` > 1 scores a pixel by the mean loss of the labelled pixels in the window x window box
around it instead of its own loss alone (an extension; the paper's rule is window = 1). Noise in
pseudo-masks comes in regions (shifted boundaries, dropped or swapped objects), so the
neighbourhood is evidence too; on CamVid it also makes a θ calibrated on one sequence hold its
precision better on others (bench/RESULTS.md). θ is calibrated on the same windowed score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import ParameterError
from noisyseg.ops.float16_histogram import float16_from_keys, float16_order_keys, split_histograms
from noisyseg.params import Param
from noisyseg.strategies.detection.base import Detection, DetectionContext, Detector, label_probability
from noisyseg.strategies.spec import StrategySpec

_EPS = 1e-12


def pixel_loss(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy ``-log p_label`` per pixel ``(B, H, W)`` float32 (0 where ignored), and the valid mask."""
    p, valid = label_probability(probs, labels)
    loss = -torch.log(p.clamp_min(_EPS))
    return torch.where(valid, loss, torch.zeros_like(loss)), valid


def box_mean(values: torch.Tensor, valid: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of ``values`` over the ``valid`` pixels of the ``window x window`` box centred on each
    pixel (clipped at the image border); ``values``/``valid`` ``(B, H, W)`` -> ``(B, H, W)`` float32,
    0 where the box holds no valid pixel. O(1) per pixel (summed-area tables: float64 sums, float32 counts).
    """
    if window == 1:
        return torch.where(valid, values, torch.zeros_like(values)).float()
    r = window // 2

    def box_sum(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (r + 1, r, r + 1, r)).cumsum(-1)
        x = (x[..., window:] - x[..., :-window]).cumsum(-2)
        return x[..., window:, :] - x[..., :-window, :]

    total = box_sum(torch.where(valid, values.double(), 0.0))
    count = box_sum(valid.float())  # integers below 2**24: exact in float32, half the traffic
    return torch.where(count > 0.5, total.float().clamp_min(0) / count.clamp_min(1), 0.0)


BUCKETS = 1 << 12  # per-image histograms for the bound: float16 order keys >> 4


class LossHistogram:
    """Counts of calibration pixels per float16 loss value, split by whether the noisy label is right.

    Losses are compared at float16 precision (the precision score maps are stored in); with 65536
    bins per side that is exact at that precision and takes constant memory however many pixels
    are streamed through ``update``.
    """

    def __init__(self, per_image: bool = False):
        self.correct = torch.zeros(1 << 16, dtype=torch.int64)
        self.wrong = torch.zeros(1 << 16, dtype=torch.int64)
        self.per_image = per_image
        self.images: list[torch.Tensor] = []  # per_image: (2, BUCKETS) int64 (right, wrong) per image

    def update(self, losses: torch.Tensor, correct: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """losses: ``(B, ...)`` float; correct: same-shape bool, noisy label == ground truth; only
        ``valid`` pixels count when given. With ``per_image``, dim 0 indexes images."""
        if not self.per_image:
            self._add(losses, correct, valid)
            return
        for b in range(losses.shape[0]):
            wrong, right = self._add(losses[b], correct[b], None if valid is None else valid[b])
            self.images.append(torch.stack([right, wrong]).view(2, BUCKETS, -1).sum(-1))

    def _add(self, losses, correct, valid) -> tuple[torch.Tensor, torch.Tensor]:
        wrong, right = split_histograms(losses, correct, valid)
        self.wrong += wrong
        self.correct += right
        return wrong, right

    @property
    def pixels(self) -> int:
        return int(self.correct.sum() + self.wrong.sum())


def calibrate_theta(hist: LossHistogram, target_precision: float,
                    confidence: float = 0.0) -> tuple[float, list[dict]]:
    """The largest θ such that the pixels with loss <= θ are correct with share >= target
    (``confidence`` > 0: the lower bound of that share, :func:`precision_lower_bound`, is).

    Returns θ (``-inf`` when no θ reaches the target) and the precision/coverage curve at each
    decade of θ plus the chosen θ (with ``confidence``, also each point's bucket's bound).
    """
    hits = torch.cumsum(hist.correct, 0).double()
    kept = hits + torch.cumsum(hist.wrong, 0).double()
    present = (hist.correct + hist.wrong) > 0
    precision = hits / kept.clamp_min(1)
    ok = present & (precision >= target_precision)
    bound = None
    if confidence > 0:  # and at most the top of the last bucket whose bound reaches the target
        bound = precision_lower_bound(hist, confidence)
        ok &= (bound >= target_precision).repeat_interleave((1 << 16) // BUCKETS)
    keys = torch.nonzero(ok).flatten()
    theta = float(float16_from_keys(keys[-1:])[0]) if keys.numel() else -math.inf
    total = max(1, hist.pixels)

    def point(t: float) -> dict:
        k = int(float16_order_keys(torch.tensor([t]))[0])
        n = float(kept[k])
        out = {"theta": t, "precision": float(hits[k] / n) if n else float("nan"), "coverage": n / total}
        if bound is not None:  # the bound of the bucket holding θ (for its top: a grid θ may sit lower in it)
            out["precision_bound"] = float(bound[k * BUCKETS >> 16])
        return out

    grid = [10.0 ** e for e in range(-6, 2)]
    curve = [point(t) for t in sorted(set(grid + ([theta] if math.isfinite(theta) else [])))]
    return theta, curve


def precision_lower_bound(hist: LossHistogram, confidence: float, replicates: int = 1000,
                          seed: int = 0) -> torch.Tensor:
    """``(BUCKETS,)`` float64: for each bucket, the (1 - ``confidence``) quantile over image bootstrap
    resamples of the precision of the pixels with loss up to the bucket's top (NaN for buckets
    that hold no pixel, and where no resample keeps one). Needs ``hist.per_image``."""
    if not hist.images:
        raise ValueError("precision_lower_bound: the histogram holds no per-image counts (LossHistogram(per_image=True))")
    counts = torch.stack(hist.images).double()  # (N, 2, BUCKETS) right / wrong
    filled = torch.nonzero(counts.sum((0, 1)) > 0).flatten()  # only these can hold θ
    counts = counts.cumsum(-1)[..., filled]  # kept right / wrong at each filled bucket's top
    n = counts.shape[0]
    draws = torch.randint(0, n, (replicates, n), generator=torch.Generator().manual_seed(seed))
    weights = torch.zeros(replicates, n, dtype=torch.float64).scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    right = weights @ counts[:, 0]
    kept = right + weights @ counts[:, 1]
    precision = torch.where(kept > 0, right / kept.clamp_min(1), torch.nan)
    bound = torch.full((BUCKETS,), torch.nan, dtype=torch.float64)
    bound[filled] = torch.nanquantile(precision, 1.0 - confidence, dim=0)
    return bound


class SmallLoss(Detector):
    def __init__(self, theta: float | str = 0.001, calibrate_split: str | None = None, target_precision: float = 0.97,
                 window: int = 1, confidence: float = 0.0):
        if theta == "auto" and not calibrate_split:
            raise ParameterError("strategy 'small-loss': theta=auto needs -p calibrate_split=SPLIT "
                                 "(a split with ground truth, noisy labels and probs)")
        if window % 2 == 0:
            raise ParameterError(f"strategy 'small-loss': window must be odd (a box centred on the pixel), got {window}")
        self.theta = theta
        self.calibrate_split = calibrate_split
        self.target_precision = target_precision
        self.window = window
        self.confidence = confidence

    def score(self, probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss score ``(B, H, W)`` float32 (the pixel's CE, or its window mean) and the valid mask."""
        loss, valid = pixel_loss(probs, labels)  # already 0 where ignored: the window-1 score as is
        return (loss if self.window == 1 else box_mean(loss, valid, self.window)), valid

    def fit(self, ctx: DetectionContext) -> dict:
        if self.theta != "auto":
            return {"theta": self.theta, "window": self.window}
        hist = LossHistogram(per_image=self.confidence > 0)
        noisy_right = 0
        for batch in ctx.calibration_batches(self.calibrate_split):
            loss, valid = self.score(batch.probs, batch.labels)
            valid &= batch.gt != IGNORE_INDEX
            correct = batch.labels == batch.gt
            hist.update(loss, correct, valid)
            noisy_right += int((correct & valid).sum())
        if hist.pixels == 0:
            raise ParameterError(f"strategy 'small-loss': calibration split '{self.calibrate_split}' has no pixel "
                                 "with both a ground-truth and a noisy label")
        theta, curve = calibrate_theta(hist, self.target_precision, self.confidence)
        self.theta = theta
        return {"theta": theta, "window": self.window, "calibrate_split": self.calibrate_split,
                "target_precision": self.target_precision, "confidence": self.confidence,
                "calibration_pixels": hist.pixels, "calibration_noisy_precision": noisy_right / hist.pixels,
                "curve": curve}

    def detect(self, probs: torch.Tensor, labels: torch.Tensor) -> Detection:
        if self.theta == "auto":
            raise RuntimeError("small-loss: call fit() to calibrate theta=auto before detect()")
        loss, valid = self.score(probs, labels)
        # θ was chosen at float16 precision; compare at the same precision.
        return Detection(valid & (loss.half().float() > float(self.theta)), loss)


SPEC = StrategySpec(
    kind="detection",
    name="small-loss",
    summary="flag pixels whose cross-entropy under a clean model exceeds θ (θ fixed or calibrated on a split with GT)",
    factory=SmallLoss,
    params=(
        Param("theta", float, 0.001, "loss threshold, or 'auto' to calibrate on calibrate_split", min=0.0, special=("auto",)),
        Param("calibrate_split", str, None, "split with GT, noisy labels and probs used by theta=auto"),
        Param("target_precision", float, 0.97, "kept-label precision theta=auto aims for", min=0.0, max=1.0),
        Param("confidence", float, 0.0, "theta=auto: 0 = meet the target on the calibration split; c > 0 = "
              "its c lower bound over image bootstrap resamples (e.g. 0.9)", min=0.0, max=0.999),
        Param("window", int, 1, "score = mean loss over a window x window box (odd; 1 = the pixel's own loss)",
              min=1, max=255),
    ),
)
