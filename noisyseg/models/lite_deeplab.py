"""DeepLabv3+ on an ImageNet-pretrained EfficientNet-Lite backbone.

Backbone at output stride 16 (or 8), ASPP on its deepest features, a decoder that fuses the
stride-4 features (so thin classes such as poles and signs keep their width) with depthwise
separable 3x3 convolutions as DeepLabv3+ does, a 1x1 classifier; a GAP + linear image classifier
over the deepest features gives image-tag logits and CAMs.

forward(images (B, 3, H, W), normalised as 2x - 1) -> {"logits": (B, C, H, W),
"features": (B, D, ceil(H/4), ceil(W/4)), "class_logits": (B, C), "stage4": (B, K, H/os, W/os)};
``forward(images, feature_dropout=p)`` adds "logits_fp" (B, C, H, W), the decoder's output on
dropped-out backbone features (UniMatch's feature perturbation).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisyseg.models.deeplab import ASPP, DeepLabDecoder, conv_bn_relu
from noisyseg.models.efficientnet_lite import EfficientNetLite, load_imagenet_weights

BN_MODES = ("auto", "frozen", "train")


def separable_conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 + BN + ReLU, then pointwise 1x1 + BN + ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         conv_bn_relu(cin, cout, 1))


class LiteDeepLab(DeepLabDecoder, nn.Module):
    """EfficientNet-Lite + DeepLabv3+ decoder.

    Args:
        num_classes: C.
        variant: ``efficientnet-lite0``, ``-lite1`` or ``-lite2``.
        pretrained: load the ImageNet weights from the variant's installed package.
        decoder_width: D, channels of ASPP and of the decoder feature map (``features``).
        output_stride: 16 or 8 (8: 4x the backbone's cost in its last stages, finer ASPP input).
        aspp_rates: dilation rates of the ASPP branches at output stride 16 (doubled at 8).
        bn: ``frozen`` keeps the backbone's BatchNorm statistics at their ImageNet values (its
            affine parameters still learn): batches of 8 small crops estimate them badly.
            ``train`` updates them; ``auto`` is ``frozen`` when pretrained, else ``train``.
        drop_path: the backbone's stochastic-depth rate.
    """

    feature_stride = 4

    def __init__(self, num_classes: int, variant: str = "efficientnet-lite0", pretrained: bool = True,
                 decoder_width: int = 128, output_stride: int = 16, aspp_rates: tuple[int, ...] = (3, 6, 9),
                 bn: str = "auto", drop_path: float = 0.1):
        super().__init__()
        if bn not in BN_MODES:
            raise ValueError(f"LiteDeepLab: bn must be one of {BN_MODES}, got {bn!r}")
        self.backbone = EfficientNetLite(variant, output_stride=output_stride, drop_path=drop_path)
        if pretrained:
            load_imagenet_weights(self.backbone)
        # The ImageNet classifier is not part of the segmentation network.
        del self.backbone._conv_head, self.backbone._bn1, self.backbone._fc
        c4, _, deep = self.backbone.tap_channels
        rates = tuple(r * (16 // output_stride) for r in aspp_rates)
        D = decoder_width
        low = max(16, D // 4)
        self.aspp = ASPP(deep, D, rates)
        self.reduce = conv_bn_relu(c4, low, 1)
        self.fuse = nn.Sequential(separable_conv_bn_relu(D + low, D), separable_conv_bn_relu(D, D))
        self.classifier = nn.Conv2d(D, num_classes, 1)
        self.class_head = nn.Linear(deep, num_classes)
        self.freeze_bn = bn == "frozen" or (bn == "auto" and pretrained)
        self.num_classes, self.feature_dim = num_classes, D

    def train(self, mode: bool = True) -> "LiteDeepLab":
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, images: torch.Tensor, feature_dropout: float = 0.0) -> dict[str, torch.Tensor]:
        """``feature_dropout`` p > 0 adds ``"logits_fp"``: the decoder run once more on the backbone
        features with channel dropout (``Dropout2d(p)``, always on), UniMatch's feature perturbation."""
        size = images.shape[-2:]
        low, _, deep = self.backbone.forward_features(images)
        features, logits = self.decode(low, deep, size)
        out = {"logits": logits, "features": features, "class_logits": self.class_head(deep.mean((2, 3))),
               "stage4": deep}
        if feature_dropout > 0:
            out["logits_fp"] = self.perturbed_logits(low, deep, size, feature_dropout)
        return out
