"""PseudoSeg's self-attention Grad-CAM (SGC; Zou et al., eq. 3 and appendix A).

The CAMs it refines come from ``noisyseg.models.cam.class_activation_maps`` (re-exported here).

``SelfAttentionGradCAM`` refines CAMs by propagating them along feature similarity:
key and query are 1x1 convolutions of hypercolumn features (the last stages concatenated at one
resolution); value is the CAMs plus a background channel 1 - max_c CAM_c; the output is
conv1x1+BN(attention · value + value), trained with cross-entropy on pixel-labelled images.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisyseg.models.cam import class_activation_maps  # noqa: F401  (re-exported)


def cam_value(cams: torch.Tensor, background: int | None = 0) -> torch.Tensor:
    """SGC's value: foreground CAMs with the background channel replaced by 1 - max over the others.

    Args:
        cams: (B, C, h, w) normalised CAMs; the background channel's content is ignored.
        background: background class id, or None (datasets without one: the CAMs are the value).
    """
    if background is None:
        return cams
    fg = torch.cat([cams[:, :background], cams[:, background + 1:]], 1)
    bg = 1 - fg.amax(dim=1, keepdim=True) if fg.shape[1] else torch.ones_like(cams[:, :1])
    return torch.cat([cams[:, :background], bg, cams[:, background + 1:]], 1)


class SelfAttentionGradCAM(nn.Module):
    """PseudoSeg's SGC head.

    Args:
        in_channels: channels of the hypercolumn (sum over the given feature maps).
        num_classes: C (value and output channels).
        embed_dim: channels of key and query.
        background: background class id (its value channel is 1 - max of the others), or None.

    forward(features, cams) -> (B, C, h, w) SGC logits at the first feature map's resolution:
        features: a list of (B, K_i, h_i, w_i) maps (e.g. [stage3, stage4]); each is resized
            bilinearly to the first one's size and concatenated (the hypercolumn).
        cams: (B, C, h', w') normalised CAMs (any size; resized), zero for absent classes.

    Train with cross-entropy against pixel labels; PseudoSeg stops the gradient into the backbone
    (pass detached features), so only this head learns from that loss.

    Example:
        >>> sgc = SelfAttentionGradCAM(in_channels=48, num_classes=3, embed_dim=8)
        >>> out = sgc([torch.randn(2, 16, 6, 6), torch.randn(2, 32, 6, 6)], torch.rand(2, 3, 6, 6))
        >>> out.shape
        torch.Size([2, 3, 6, 6])
    """

    def __init__(self, in_channels: int, num_classes: int, embed_dim: int = 64, background: int | None = 0):
        super().__init__()
        self.key = nn.Conv2d(in_channels, embed_dim, 1)
        self.query = nn.Conv2d(in_channels, embed_dim, 1)
        self.out = nn.Sequential(nn.Conv2d(num_classes, num_classes, 1, bias=False), nn.BatchNorm2d(num_classes))
        self.background = background
        self.num_classes = num_classes
        self.scale = 1.0 / math.sqrt(embed_dim)

    def hypercolumn(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[2:]
        return torch.cat([f if f.shape[2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                          for f in features], 1)

    def forward(self, features: list[torch.Tensor], cams: torch.Tensor) -> torch.Tensor:
        hyper = self.hypercolumn(list(features))
        B, _, h, w = hyper.shape
        if cams.shape[1] != self.num_classes:
            raise ValueError(f"SelfAttentionGradCAM: cams must have {self.num_classes} channels, got {cams.shape[1]}")
        if cams.shape[2:] != (h, w):
            cams = F.interpolate(cams, size=(h, w), mode="bilinear", align_corners=False)
        value = cam_value(cams.to(hyper.dtype), self.background).flatten(2)       # (B, C, L)
        q = self.query(hyper).flatten(2).transpose(1, 2)                          # (B, L, E)
        k = self.key(hyper).flatten(2)                                            # (B, E, L)
        attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)               # (B, L, L), rows sum to 1
        propagated = torch.bmm(value, attn.transpose(1, 2))                       # (B, C, L): Σ_j a_ij m_j
        return self.out((propagated + value).view(B, self.num_classes, h, w))
