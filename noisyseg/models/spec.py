"""How a plugin offers a segmentation network to ``noisyseg train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from noisyseg.params import Param, resolve_params


@dataclass(frozen=True)
class ModelSpec:
    """A registered model constructor.

    ``factory(num_classes=C, **params)`` must return an ``nn.Module`` whose ``forward(images)``
    takes ``(B, 3, H, W)`` float images normalised as ``normalisation`` says (``imagenet``: ImageNet
    channel mean/std; ``tf``: 2x - 1 for x in [0, 1], what TensorFlow-trained weights expect) and returns a dict with
    ``"logits"`` ``(B, C, H, W)`` at input resolution and ``"features"`` ``(B, D, h, w)`` at the
    network's output stride, and which exposes ``feature_dim`` (D) and ``feature_stride``.

    Optional, for the semi-supervised loop: ``forward(images, feature_dropout=p)`` adding
    ``"logits_fp"`` (the decoder on channel-dropped encoder features; ``--method unimatch``), and
    ``"class_logits"`` ``(B, C)`` with ``"stage4"`` (the features a ``class_head`` linear layer pools)
    for CAMs (``--method pseudoseg``).

    ``channels_last``: the network runs with NHWC weights and activations (``torch.channels_last``),
    which oneDNN and cuDNN convolve faster (about 1.35x a training step of efficientnet-lite0 on 2
    CPU cores; ``bench/train_step.py``). A model whose forward reshapes activations with ``view``
    must leave it False.
    """

    name: str
    summary: str
    factory: Callable[..., Any]
    params: tuple[Param, ...] = field(default_factory=tuple)
    normalisation: str = "imagenet"
    channels_last: bool = False

    def resolve(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validated constructor parameters: defaults overridden by ``given``."""
        return resolve_params(f"model '{self.name}'", self.params, given)
