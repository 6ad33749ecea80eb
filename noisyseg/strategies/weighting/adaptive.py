"""adaptive (U2PL, Wang et al., eq. 14): λ_u = η · (all pixels) / (kept pixels), one scalar per batch.

The kept pixels are those the entropy filter keeps (entropy <= the (1 - α) quantile of the
batch). As a weight map, kept pixels get λ_u and the others 0, so that a loss averaged over all
pixels equals λ_u times the loss averaged over the kept ones. λ_u > 1 does not fit a weights PNG
(clipped at 1): write ``--float``.
"""

from __future__ import annotations

import torch

from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.entropy_filter import reliable_mask
from noisyseg.strategies.spec import StrategySpec
from noisyseg.strategies.weighting.base import WeightInputs, Weighter


def adaptive_weight(kept: torch.Tensor, eta: float = 1.0) -> torch.Tensor:
    """Eq. 14: η · numel(kept) / kept.sum(), a 0-dim float32 tensor (η · numel when nothing is kept,
    where the loss is 0 anyway).

    Args:
        kept: (B, H, W) bool, pixels whose pseudo-label is not ignored.
        eta: base weight η.

    Example:
        >>> float(adaptive_weight(torch.tensor([[[True, False], [False, False]]])))
        4.0
    """
    return eta * kept.numel() / kept.sum().clamp_min(1).to(torch.float32)


class Adaptive(Weighter):
    def __init__(self, eta: float = 1.0, alpha: float = 0.2, scope: str = "batch"):
        self.eta, self.alpha, self.scope = eta, alpha, scope

    def weigh(self, inputs: WeightInputs) -> torch.Tensor:
        kept, _ = reliable_mask(inputs.probs, self.alpha, scope=self.scope)
        lam = adaptive_weight(kept, self.eta)
        return kept.to(torch.float32) * lam


SPEC = StrategySpec(
    kind="weighting",
    name="adaptive",
    summary="U2PL's lambda_u = eta * all / kept pixels on the entropy-kept pixels, 0 elsewhere",
    factory=Adaptive,
    params=(
        Param("eta", float, 1.0, "base weight eta", min=0.0),
        Param("alpha", float, 0.2, "share of valid pixels the entropy filter drops", min=0.0, max=1.0),
        Param("scope", str, "batch", "entropy quantile over the batch or each image", choices=("batch", "image")),
    ),
)
