"""entropy-filter (U2PL, Wang et al., eq. 11-13): keep the argmax where the prediction is reliable.

Reliability is the entropy H = -Σ p log p. The threshold γ_t is the (1 - α_t) quantile of H over
the valid pixels of the batch (numpy's linear interpolation, computed exactly by
``noisyseg.ops.entropy_rank``); a pixel keeps its argmax when H <= γ_t, so ties at the threshold
are kept. With n valid pixels of distinct entropies exactly ``floor((1 - α)(n - 1)) + 1`` are kept,
i.e. the share 1 - α up to one pixel. α_t = α_0 (1 - t / T) shrinks the unreliable share as
training goes on.
"""

from __future__ import annotations

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.ops.entropy_rank import entropy_rank
from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels, check_probs, require
from noisyseg.strategies.spec import StrategySpec


def alpha_schedule(alpha0: float, epoch: float, total: float) -> float:
    """U2PL eq. 13: α_t = α_0 (1 - t / T), clamped to [0, α_0] for t outside [0, T]."""
    if total <= 0:
        raise ValueError(f"alpha_schedule: total must be > 0, got {total}")
    return alpha0 * min(1.0, max(0.0, 1.0 - epoch / total))


def reliable_mask(probs: torch.Tensor, alpha: float, valid: torch.Tensor | None = None,
                  scope: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels whose entropy is at most the (1 - alpha) quantile over valid pixels.

    Args:
        probs: (B, C, H, W) float probabilities.
        alpha: share of valid pixels to call unreliable, in [0, 1].
        valid: optional (B, H, W) bool; other pixels are never reliable and do not count.
        scope: ``"batch"`` (one quantile over the batch, as U2PL) or ``"image"`` (one per image).

    Returns:
        reliable (B, H, W) bool and entropy (B, H, W) float32.
    """
    check_probs(probs, "entropy_filter")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"entropy_filter: alpha must be in [0, 1], got {alpha}")
    if valid is None:
        valid = torch.ones(probs.shape[0], *probs.shape[2:], dtype=torch.bool, device=probs.device)
    if scope == "batch":
        out = entropy_rank(probs, is_logits=False, valid=valid, quantile=1.0 - alpha)
        entropy, threshold = out.entropy, out.threshold
    elif scope == "image":
        parts = [entropy_rank(probs[i:i + 1], is_logits=False, valid=valid[i:i + 1], quantile=1.0 - alpha)
                 for i in range(probs.shape[0])]
        entropy = torch.cat([p.entropy for p in parts])
        threshold = torch.stack([p.threshold for p in parts]).view(-1, 1, 1)
    else:
        raise ValueError(f"entropy_filter: scope must be 'batch' or 'image', got {scope!r}")
    return valid & (entropy <= threshold), entropy


def entropy_filter(probs: torch.Tensor, alpha: float, valid: torch.Tensor | None = None, scope: str = "batch",
                   ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """U2PL eq. 12: argmax where entropy <= the (1 - alpha) quantile of the batch, ignore elsewhere.

    Args:
        probs: (B, C, H, W) float probabilities.
        alpha: share of the valid pixels to ignore (α_t; see ``alpha_schedule``).
        valid: optional (B, H, W) bool of pixels that count (e.g. not padding); others are ignored.
        scope: ``"batch"`` or ``"image"``, where the quantile is taken.

    Returns:
        (B, H, W) int64 class ids, ``ignore_index`` on unreliable pixels.

    Example:
        >>> probs = torch.softmax(torch.randn(2, 4, 8, 8) * 3, 1)
        >>> labels = entropy_filter(probs, alpha=0.25)
        >>> int((labels != 255).sum())  # floor(0.75 * 127) + 1
        96
    """
    reliable, _ = reliable_mask(probs, alpha, valid, scope)
    labels = probs.argmax(dim=1)
    return torch.where(reliable, labels, torch.full_like(labels, ignore_index))


class EntropyFilter(PseudoLabeler):
    def __init__(self, alpha: float = 0.2, scope: str = "batch"):
        self.alpha, self.scope = alpha, scope

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        probs = require(inputs, "probs", "entropy-filter")
        return PseudoLabels(entropy_filter(probs, self.alpha, scope=self.scope), probs.float())


SPEC = StrategySpec(
    kind="pseudo-labeling",
    name="entropy-filter",
    summary="argmax where entropy is below the (1 - alpha) quantile of the batch, ignore elsewhere (U2PL)",
    factory=EntropyFilter,
    params=(
        Param("alpha", float, 0.2, "share of valid pixels to ignore (U2PL's alpha_t)", min=0.0, max=1.0),
        Param("scope", str, "batch", "quantile over the whole batch or each image", choices=("batch", "image")),
    ),
)
