"""prototype-denoised (U2PL+, Wang et al., eq. 15-20): reweight predictions by distance to class prototypes.

A prototype z_c is the mean feature of the pixels of class c: labelled pixels with label c and
reliable (low-entropy) unlabelled pixels predicted c (eq. 15-17). Across batches it is momentum
updated, z_c <- m z'_c + (1 - m) z_c with m = 0.999 (eq. 18; z'_c is the previous prototype).
Each pixel's class weights are softmax over classes of -||f - z_c|| (eq. 19); the pseudo-label is
argmax of w ⊙ p (eq. 20) on the reliable pixels (the entropy filter of eq. 12 is computed on the
undenoised p), ignore elsewhere.

The paper writes the weight per image i; we compute it per pixel (the features are per pixel and
the distance to a prototype is a pixel's), which is also what the ProDA denoising it cites does.
Classes without any prototype yet get weight 0 (they cannot be confirmed), unless no class has
one, in which case p is used as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels, check_probs, require
from noisyseg.strategies.pseudo_labeling.entropy_filter import reliable_mask
from noisyseg.strategies.spec import StrategySpec


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature per class (eq. 15).

    Args:
        features: (B, D, H, W) float, at the labels' resolution.
        labels: (B, H, W) int64 class ids, ``ignore_index`` skipped.
    Returns:
        prototypes (C, D) float32 (zeros for classes with no pixel) and counts (C,) int64.
    """
    B, D = features.shape[:2]
    if labels.shape != (B, *features.shape[2:]):
        raise ValueError(f"class_prototypes: labels must be (B, H, W) = {(B, *features.shape[2:])}, got {tuple(labels.shape)}")
    flat = features.float().permute(0, 2, 3, 1).reshape(-1, D)
    lab = labels.reshape(-1)
    keep = lab != ignore_index
    flat, lab = flat[keep], lab[keep].long()
    sums = torch.zeros(num_classes, D, dtype=torch.float32, device=features.device).index_add_(0, lab, flat)
    counts = torch.bincount(lab, minlength=num_classes)
    protos = sums / counts.clamp_min(1)[:, None].to(sums.dtype)
    return protos, counts


def momentum_update(previous: torch.Tensor | None, previous_seen: torch.Tensor | None, current: torch.Tensor,
                    counts: torch.Tensor, momentum: float = 0.999) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 18 per class: m * previous + (1 - m) * current where both exist; a class seen for the
    first time takes its current mean; a class absent from this batch keeps its previous value.

    Returns:
        prototypes (C, D) and seen (C,) bool.
    """
    now = counts > 0
    if previous is None:
        return current.clone(), now
    mixed = momentum * previous + (1 - momentum) * current
    out = torch.where((previous_seen & now)[:, None], mixed, torch.where(now[:, None], current, previous))
    return out, previous_seen | now


def prototype_weights(features: torch.Tensor, prototypes: torch.Tensor, seen: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 19: w_c = softmax_c(-||f - z_c||) per pixel.

    Args:
        features: (B, D, H, W) float.
        prototypes: (C, D) float.
        seen: optional (C,) bool; unseen classes get weight 0.
    Returns:
        (B, C, H, W) float32 weights summing to 1 over the seen classes.
    """
    B, D, H, W = features.shape
    flat = features.float().permute(0, 2, 3, 1).reshape(-1, D)
    dist = torch.cdist(flat, prototypes.float())  # (BHW, C)
    if seen is not None:
        dist = dist.masked_fill(~seen[None], float("inf"))
    w = torch.softmax(-dist, dim=1)
    return w.view(B, H, W, -1).permute(0, 3, 1, 2)


def prototype_denoise(probs: torch.Tensor, features: torch.Tensor, prototypes: torch.Tensor,
                      seen: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 20: p* = w ⊙ p (not renormalised; only its argmax is used).

    The weights are computed at the features' resolution (any stride) and resized bilinearly to
    the probs' size, which costs stride^2 less than upsampling D-dim features first.

    Args:
        probs: (B, C, H, W) float probabilities.
        features: (B, D, h, w) float.
        prototypes: (C, D); seen: optional (C,) bool.
    Returns:
        (B, C, H, W) float32.
    """
    check_probs(probs, "prototype_denoise")
    w = prototype_weights(features, prototypes, seen)
    if w.shape[2:] != probs.shape[2:]:
        w = F.interpolate(w, size=probs.shape[2:], mode="bilinear", align_corners=False)
    return w * probs.float()


class PrototypeDenoised(PseudoLabeler):
    """Keeps momentum prototypes across calls to ``label`` (one object per training run / CLI run)."""

    needs = ("probs", "features")
    accepts = ("labels",)  # labelled pixels join the prototypes (training's streams with labels)

    def __init__(self, alpha: float = 0.2, momentum: float = 0.999, scope: str = "batch"):
        self.alpha, self.momentum, self.scope = alpha, momentum, scope
        self.prototypes: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The momentum prototypes (saved with a training run, so a resumed run continues them)."""
        return {} if self.prototypes is None else {"prototypes": self.prototypes, "seen": self.seen}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.prototypes, self.seen = state.get("prototypes"), state.get("seen")

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        probs = require(inputs, "probs", "prototype-denoised")
        feats = require(inputs, "features", "prototype-denoised")
        reliable, _ = reliable_mask(probs, self.alpha, scope=self.scope)
        hard = torch.where(reliable, probs.argmax(1), torch.full_like(reliable, IGNORE_INDEX, dtype=torch.long))
        if inputs.labels is not None:  # labelled pixels join the prototype pool (eq. 16-17)
            hard = torch.where(inputs.labels != IGNORE_INDEX, inputs.labels, hard)
        # Prototypes at the features' resolution: labels are subsampled (nearest), not features upsampled.
        small = F.interpolate(hard[:, None].float(), size=feats.shape[2:], mode="nearest")[:, 0].long()
        current, counts = class_prototypes(feats, small, probs.shape[1])
        self.prototypes, self.seen = momentum_update(self.prototypes, self.seen, current, counts, self.momentum)
        if not bool(self.seen.any()):
            return PseudoLabels(hard)
        denoised = prototype_denoise(probs, feats, self.prototypes, self.seen)
        labels = torch.where(reliable, denoised.argmax(1), torch.full_like(hard, IGNORE_INDEX))
        return PseudoLabels(labels)


SPEC = StrategySpec(
    kind="pseudo-labeling",
    name="prototype-denoised",
    summary="entropy-filtered argmax of p reweighted by softmax(-distance) to momentum class prototypes (U2PL+)",
    factory=PrototypeDenoised,
    params=(
        Param("alpha", float, 0.2, "share of valid pixels to ignore (entropy filter)", min=0.0, max=1.0),
        Param("momentum", float, 0.999, "prototype momentum m (eq. 18)", min=0.0, max=1.0),
        Param("scope", str, "batch", "entropy quantile over the batch or each image", choices=("batch", "image")),
    ),
)
