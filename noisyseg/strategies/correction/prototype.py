"""prototype (U2PL+, Wang et al., eq. 15-20, used as a corrector): holes take argmax of
softmax_c(-||f - z_c||) ⊙ p.

Class prototypes z_c are the mean features of the clean pixels of class c, computed per image
with ``superpixel_pool`` (the class map plays the segment map, so the features are averaged as if
bilinearly upsampled, without materialising them). A dataset-level prototype is momentum-updated
across batches (eq. 18: z <- m z' + (1 - m) z_batch); with ``source=both`` (default) an image uses
its own prototype for classes it has clean pixels of and the dataset prototype for the others, so
a class can be proposed in a hole even when the image's clean pixels miss it. ``source=image`` or
``source=dataset`` use one kind only. Classes with no prototype get weight 0. Distances are taken
at the features' stride and the weights upsampled bilinearly to the probs' size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.correction.base import CorrectionInputs, Corrector
from noisyseg.strategies.pseudo_labeling.prototype_denoised import momentum_update
from noisyseg.strategies.spec import StrategySpec
from noisyseg.timing import Timer


def image_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image class means of clean pixels.

    Args:
        features: (B, D, h, w) float at any stride. labels: (B, H, W) int64, 255 = hole.
    Returns:
        prototypes (B, C, D) float32 and pixel counts (B, C) int64.
    """
    from noisyseg.ops.superpixel_pool import superpixel_pool

    segments = torch.where(labels == IGNORE_INDEX, torch.full_like(labels, -1), labels.long())
    means, counts = superpixel_pool(features.float(), segments, num_classes)
    return means.float(), counts


class PrototypeCorrector(Corrector):
    needs = ("features", "probs")

    def __init__(self, momentum: float = 0.99, source: str = "both", keep_clean: bool = True):
        self.momentum, self.source, self.keep_clean = momentum, source, keep_clean
        self.prototypes: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None

    def correct_batch(self, inputs: CorrectionInputs, times: Timer) -> torch.Tensor:
        with times("predict"):
            feats, probs, C = inputs.features.float(), inputs.probs.float(), inputs.num_classes
            per_image, counts = image_prototypes(feats, inputs.labels, C)
            total = counts.sum(0)
            batch_mean = (per_image * counts[..., None]).sum(0) / total.clamp_min(1)[:, None]
            if self.prototypes is not None:
                self.prototypes, self.seen = self.prototypes.to(feats.device), self.seen.to(feats.device)
            self.prototypes, self.seen = momentum_update(self.prototypes, self.seen, batch_mean, total, self.momentum)
            own = counts > 0
            if self.source == "image":
                protos, seen = per_image, own
            elif self.source == "dataset":
                protos, seen = self.prototypes[None].expand_as(per_image), self.seen[None].expand_as(own)
            else:
                protos = torch.where(own[..., None], per_image, self.prototypes[None])
                seen = own | self.seen[None]
            B, D, h, w = feats.shape
            flat = feats.permute(0, 2, 3, 1).reshape(B, h * w, D)
            dist = torch.cdist(flat, protos).masked_fill(~seen[:, None], float("inf"))  # (B, hw, C)
            weights = torch.softmax(-dist, dim=2).transpose(1, 2).reshape(B, C, h, w)
            weights = F.interpolate(weights, size=probs.shape[2:], mode="bilinear", align_corners=False)
            return (weights * probs).argmax(1)


SPEC = StrategySpec(
    kind="correction",
    name="prototype",
    summary="U2PL+ prototypical denoising: argmax of softmax(-distance to class prototypes) x probs",
    factory=PrototypeCorrector,
    params=(
        Param("momentum", float, 0.99, "dataset prototype momentum m in z <- m z + (1 - m) z_batch", min=0.0, max=1.0),
        Param("source", str, "both", "prototypes used: the image's, the dataset's, or both", choices=("both", "image", "dataset")),
        Param("keep_clean", bool, True, "clean pixels keep their label"),
    ),
)
