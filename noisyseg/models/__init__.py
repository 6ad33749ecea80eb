"""Segmentation networks. ``SPECS`` lists the built-in constructors (registered as plugins)."""

from noisyseg.models.deeplab import DeepLabV3Plus
from noisyseg.models.sgc import SelfAttentionGradCAM
from noisyseg.models.spec import ModelSpec
from noisyseg.strategies.spec import Param


def _deeplab(num_classes: int, width: int, depth: str, feature_dim: int) -> DeepLabV3Plus:
    stages = tuple(int(d) for d in depth.split(","))
    return DeepLabV3Plus(num_classes, width=width, depth=stages, feature_dim=feature_dim)


SPECS = [
    ModelSpec(
        name="deeplabv3plus",
        summary="compact DeepLabv3+ (ResNet-style encoder, ASPP, stride-4 decoder), plain torch",
        factory=_deeplab,
        params=(
            Param("width", int, 32, "channels of the first stage (later stages 2x, 4x, 8x)", min=4, max=256),
            Param("depth", str, "1,2,2,1", "basic blocks per stage, 4 comma-separated numbers"),
            Param("feature_dim", int, 128, "channels of the decoder feature map", min=8, max=1024),
        ),
    ),
]

__all__ = ["DeepLabV3Plus", "ModelSpec", "SPECS", "SelfAttentionGradCAM"]
