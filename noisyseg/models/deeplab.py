"""A compact DeepLabv3+-style network in plain torch.

Encoder: a ResNet-like stack of basic blocks (strides 2, 4, 8, 16; the last stage dilated at
stride 16). ASPP on the last stage, a decoder that fuses the stride-4 features, a 1x1 classifier.
An optional classification head (global average pooling + linear over the last stage) serves
image-level tags and CAMs.

forward(images (B, 3, H, W)) -> {"logits": (B, C, H, W), "features": (B, D, ceil(H/4), ceil(W/4)),
"class_logits": (B, C) and "stage4" when the head is on}; ``forward(images, feature_dropout=p)`` adds
"logits_fp" (B, C, H, W), the decoder's output on dropped-out encoder features.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride, dilation)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout))
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.skip is None else self.skip(x)
        return F.relu(self.conv2(self.conv1(x)) + identity, inplace=True)


def _stage(cin: int, cout: int, blocks: int, stride: int, dilation: int = 1) -> nn.Sequential:
    layers = [BasicBlock(cin, cout, stride, dilation)]
    layers += [BasicBlock(cout, cout, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3 and an image-pooling branch."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, 1, r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = conv_bn_relu(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, 1))


class DeepLabDecoder:
    """The DeepLabv3+ decoder step shared by the networks: ASPP on the deepest features, upsampled
    to the stride-4 ones and fused with their reduction (needs ``aspp``, ``reduce``, ``fuse``,
    ``classifier`` modules)."""

    def decode(self, low: torch.Tensor, deep: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(stride-4 features (B, c, h, w), deepest features (B, K, h', w')) -> (features (B, D, h, w),
        logits (B, C, *size))."""
        x = F.interpolate(self.aspp(deep), size=low.shape[-2:], mode="bilinear", align_corners=False)
        features = self.fuse(torch.cat([x, self.reduce(low)], 1))
        return features, F.interpolate(self.classifier(features), size=size, mode="bilinear", align_corners=False)

    def perturbed_logits(self, low: torch.Tensor, deep: torch.Tensor, size: tuple[int, int], p: float) -> torch.Tensor:
        """UniMatch's feature perturbation: the decoder on channel-dropped (``Dropout2d(p)``, always
        on) encoder features -> logits (B, C, *size)."""
        return self.decode(F.dropout2d(low, p, True), F.dropout2d(deep, p, True), size)[1]


class DeepLabV3Plus(DeepLabDecoder, nn.Module):
    """Compact DeepLabv3+.

    Args:
        num_classes: C.
        width: channels of the first stage; later stages use 2x, 4x, 8x.
        depth: basic blocks per stage (4 stages).
        feature_dim: D, channels of the decoder feature map returned as ``features``.
        aspp_rates: dilation rates of the ASPP branches (at stride 16).
        classifier_head: add the GAP + linear image classifier (``class_logits``).
    """

    feature_stride = 4

    def __init__(self, num_classes: int, width: int = 32, depth: tuple[int, ...] = (1, 2, 2, 1),
                 feature_dim: int = 128, aspp_rates: tuple[int, ...] = (3, 6, 9), classifier_head: bool = True):
        super().__init__()
        if len(depth) != 4:
            raise ValueError(f"DeepLabV3Plus: depth must list 4 stages, got {depth}")
        w = width
        self.stem = nn.Sequential(conv_bn_relu(3, w, 3, 2), conv_bn_relu(w, w, 3, 1))
        self.stage1 = _stage(w, w, depth[0], 2)           # stride 4
        self.stage2 = _stage(w, 2 * w, depth[1], 2)       # stride 8
        self.stage3 = _stage(2 * w, 4 * w, depth[2], 2)   # stride 16
        self.stage4 = _stage(4 * w, 8 * w, depth[3], 1, dilation=2)
        self.aspp = ASPP(8 * w, feature_dim, aspp_rates)
        self.reduce = conv_bn_relu(w, max(16, feature_dim // 4), 1)
        self.fuse = nn.Sequential(conv_bn_relu(feature_dim + max(16, feature_dim // 4), feature_dim),
                                  conv_bn_relu(feature_dim, feature_dim))
        self.classifier = nn.Conv2d(feature_dim, num_classes, 1)
        self.class_head = nn.Linear(8 * w, num_classes) if classifier_head else None
        self.num_classes = num_classes
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor, feature_dropout: float = 0.0) -> dict[str, torch.Tensor]:
        """``feature_dropout`` p > 0 adds ``"logits_fp"``: the decoder run once more on the encoder
        features with channel dropout (``Dropout2d(p)``, always on), UniMatch's feature perturbation."""
        size = images.shape[-2:]
        low = self.stage1(self.stem(images))
        deep = self.stage4(self.stage3(self.stage2(low)))
        features, logits = self.decode(low, deep, size)
        out = {"logits": logits, "features": features}
        if feature_dropout > 0:
            out["logits_fp"] = self.perturbed_logits(low, deep, size, feature_dropout)
        if self.class_head is not None:
            out["class_logits"] = self.class_head(deep.mean((2, 3)))
            out["stage4"] = deep
        return out
