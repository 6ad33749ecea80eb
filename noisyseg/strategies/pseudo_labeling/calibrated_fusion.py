"""calibrated-fusion (PseudoSeg, Zou et al., eq. 4): soft pseudo-labels from decoder and CAM/SGC logits.

    F(p, m) = Sharpen(γ softmax(p / N) + (1 - γ) softmax(m / N), T),   Sharpen(a, T)_c = a_c^{1/T} / Σ_k a_k^{1/T}

N is one normalisation factor shared by both sources, so that the more over-confident source does
not dominate the average. The paper writes N = sqrt(Σ_i a_i^2 + b_i^2); taken literally over all
C·H·W entries it grows with the image size and flattens every softmax towards uniform, so we use
the root mean square over both sources, N = sqrt(mean(a^2 ∪ b^2)), which is the authors' form
(googleinterns/wss) and keeps the logits at unit scale:

- ``norm="image"`` (default): one N per image, so a pixel's label depends on its image only.
- ``norm="batch"``: one N over both sources and the whole batch, as the authors' code does; other
  images in the batch then change a pixel's label. Both are invariant to scaling both inputs by k > 0.
- ``norm="none"``: N = 1 (the fusion without calibration, an ablation).

The result sums to 1 over C at every pixel; T < 1 sharpens (lowers entropy), T = 1 leaves the
average as it is.
"""

from __future__ import annotations

import torch

from noisyseg.params import Param
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs, PseudoLabeler, PseudoLabels
from noisyseg.strategies.spec import StrategySpec

_NORMS = ("image", "batch", "none")


def sharpen(probs: torch.Tensor, temperature: float, dim: int = 1) -> torch.Tensor:
    """a^{1/T} renormalised along ``dim``, computed in log space so tiny T does not underflow."""
    if temperature <= 0:
        raise ValueError(f"sharpen: temperature must be > 0, got {temperature}")
    logp = torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))
    return torch.softmax(logp / temperature, dim=dim)


def fusion_norm(a: torch.Tensor, b: torch.Tensor, norm: str = "image") -> torch.Tensor:
    """The shared normalisation factor N: (B, 1, 1, 1) for ``image``, () for ``batch``, 1 for ``none``."""
    if norm == "none":
        return torch.ones((), dtype=a.dtype, device=a.device)
    if norm == "image":
        ms = (a.pow(2).mean(dim=(1, 2, 3), keepdim=True) + b.pow(2).mean(dim=(1, 2, 3), keepdim=True)) / 2
    elif norm == "batch":
        ms = (a.pow(2).mean() + b.pow(2).mean()) / 2
    else:
        raise ValueError(f"calibrated_fusion: norm must be one of {_NORMS}, got {norm!r}")
    # All-zero logits (a blank CAM) would divide by 0; any N gives the same uniform softmax then.
    return ms.sqrt().clamp_min(1e-12)


def calibrated_fusion(decoder_logits: torch.Tensor, cam_logits: torch.Tensor, gamma: float = 0.5,
                      temperature: float = 0.5, norm: str = "image") -> torch.Tensor:
    """PseudoSeg eq. 4: normalised, γ-averaged, sharpened softmaxes of two sources.

    Args:
        decoder_logits: (B, C, H, W) float, the segmentation decoder's pre-softmax scores.
        cam_logits: (B, C, H, W) float, the SGC (or CAM) scores at the same size.
        gamma: weight of the decoder, in [0, 1] (paper 0.5; 0.3 in the high-data setting).
        temperature: sharpening T > 0 (paper 0.5; 0.7 in the high-data setting).
        norm: ``"image"``, ``"batch"`` (the authors' code) or ``"none"``; see the module doc.

    Returns:
        (B, C, H, W) float32 soft labels summing to 1 over C.

    Example:
        >>> p, m = torch.randn(2, 5, 8, 8), torch.randn(2, 5, 8, 8)
        >>> y = calibrated_fusion(p, m)
        >>> bool(torch.allclose(y.sum(1), torch.ones(2, 8, 8)))
        True
    """
    if decoder_logits.dim() != 4 or decoder_logits.shape != cam_logits.shape:
        raise ValueError(f"calibrated_fusion: expected two (B, C, H, W) tensors of one shape, got "
                         f"{tuple(decoder_logits.shape)} and {tuple(cam_logits.shape)}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"calibrated_fusion: gamma must be in [0, 1], got {gamma}")
    a, b = decoder_logits.float(), cam_logits.float()
    n = fusion_norm(a, b, norm)
    mixed = gamma * torch.softmax(a / n, dim=1) + (1 - gamma) * torch.softmax(b / n, dim=1)
    return sharpen(mixed, temperature)


def cams_to_logits(cams: torch.Tensor, background: int | None = None) -> torch.Tensor:
    """CAM scores as the second source when no trained SGC exists: the max-normalised CAMs (in
    [0, 1], zero for absent classes) are used as logits, and with a ``background`` class id its
    channel becomes 1 - max over the other classes (PseudoSeg's background value)."""
    out = cams.float().clone()
    if background is not None:
        others = torch.cat([out[:, :background], out[:, background + 1:]], 1)
        out[:, background] = 1 - others.amax(1)
    return out


class CalibratedFusion(PseudoLabeler):
    """Decoder logits (or log-probabilities when only probs exist) fused with CAM/SGC scores."""

    needs = ("probs", "cams")
    accepts = ("logits",)  # used instead of log p when present

    def __init__(self, gamma: float = 0.5, temperature: float = 0.5, norm: str = "image",
                 background: int | str = "none", cam_scale: float = 1.0):
        self.gamma, self.temperature, self.norm = gamma, temperature, norm
        self.background = None if background == "none" else int(background)
        self.cam_scale = cam_scale

    def label(self, inputs: PseudoInputs) -> PseudoLabels:
        if inputs.cams is None:
            raise ValueError("calibrated-fusion: needs 'cams' in its inputs, found none")
        if inputs.logits is not None:
            logits = inputs.logits.float()
        elif inputs.probs is not None:
            # log p differs from the logits by a per-pixel constant: same softmax, but a different
            # RMS norm; the CLI documents this fallback.
            logits = torch.log(inputs.probs.float().clamp_min(1e-6))
        else:
            raise ValueError("calibrated-fusion: needs 'logits' or 'probs' in its inputs, found neither")
        cam_logits = self.cam_scale * cams_to_logits(inputs.cams, self.background)
        soft = calibrated_fusion(logits, cam_logits, self.gamma, self.temperature, self.norm)
        return PseudoLabels(soft.argmax(1), soft)


SPEC = StrategySpec(
    kind="pseudo-labeling",
    name="calibrated-fusion",
    summary="sharpened gamma-average of RMS-normalised decoder and CAM/SGC softmaxes (PseudoSeg), soft labels",
    factory=CalibratedFusion,
    params=(
        Param("gamma", float, 0.5, "weight of the decoder source", min=0.0, max=1.0),
        Param("temperature", float, 0.5, "sharpening temperature T", min=1e-3, max=10.0),
        Param("norm", str, "image", "RMS normalisation per image, over the batch (authors' code) or none",
              choices=_NORMS),
        Param("background", int, "none", "class id whose CAM channel becomes 1 - max of the others", min=0, max=254,
              special=("none",)),
        Param("cam_scale", float, 1.0, "multiplier of the CAM scores before fusion", min=0.0),
    ),
)
