"""Segmentation networks. ``SPECS`` lists the built-in constructors (registered as plugins)."""

from noisyseg.errors import ParameterError
from noisyseg.models.deeplab import DeepLabV3Plus
from noisyseg.models.sgc import SelfAttentionGradCAM
from noisyseg.models.spec import ModelSpec
from noisyseg.strategies.spec import Param


def _deeplab(num_classes: int, width: int, depth: str, feature_dim: int) -> DeepLabV3Plus:
    parts = [d.strip() for d in depth.split(",")]
    if len(parts) != 4 or not all(d.isdigit() and 1 <= int(d) <= 64 for d in parts):
        raise ParameterError(f"parameter 'depth' of model 'deeplabv3plus': expected 4 comma-separated block counts "
                             f"in 1..64 (e.g. 1,2,2,1), found '{depth}'")
    return DeepLabV3Plus(num_classes, width=width, depth=tuple(int(d) for d in parts), feature_dim=feature_dim)


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
