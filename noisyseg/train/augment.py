"""Strong views for semi-supervised training: photometric distortions, CutMix boxes and cutout.

Every function draws its randomness from an explicit ``torch.Generator``, so a view is a pure
function of (image, seed): the loop seeds one generator per image and view, which makes views
independent of batch composition, of the number of processes and of resuming.

The photometric ops work on one ``(3, H, W)`` float image in [0, 1] and follow torchvision's
definitions (which UniMatch and PseudoSeg use): colour jitter (brightness, contrast, saturation,
hue, in random order), greyscale, Gaussian blur. The geometry of the weak view is not touched,
so a strong view stays pixel-aligned with its weak view and with the weak view's targets.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> view = StrongAug(("colour", "grey", "blur"))
    >>> view.photometric(torch.rand(3, 32, 32), g).shape
    torch.Size([3, 32, 32])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

OPS = ("colour", "grey", "blur", "cutmix", "cutout")


def _uniform(g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def grey(img: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of a ``(3, H, W)`` image, ``(1, H, W)``."""
    return (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of the circle)."""
    r, g, b = img
    maxc, minc = img.max(0).values, img.min(0).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack([torch.stack(c) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return table.gather(0, i[None, None].expand(1, 3, *i.shape))[0]


def colour_jitter(img: torch.Tensor, g: torch.Generator, brightness: float = 0.5, contrast: float = 0.5,
                  saturation: float = 0.5, hue: float = 0.25) -> torch.Tensor:
    """torchvision's ``ColorJitter(b, c, s, h)``: the four adjustments in a random order, factors
    uniform in ``[1 - x, 1 + x]`` (hue: a shift uniform in ``[-h, h]`` of the colour circle)."""
    factors = [_uniform(g, 1 - brightness, 1 + brightness), _uniform(g, 1 - contrast, 1 + contrast),
               _uniform(g, 1 - saturation, 1 + saturation), _uniform(g, -hue, hue)]
    for op in torch.randperm(4, generator=g).tolist():
        f = factors[op]
        if op == 0:
            img = (img * f).clamp(0, 1)
        elif op == 1:
            img = (f * img + (1 - f) * grey(img).mean()).clamp(0, 1)
        elif op == 2:
            img = (f * img + (1 - f) * grey(img)).clamp(0, 1)
        elif f != 0:
            hsv = rgb_to_hsv(img)
            hsv = torch.stack([(hsv[0] + f) % 1.0, hsv[1], hsv[2]])
            img = hsv_to_rgb(hsv).clamp(0, 1)
    return img


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(3, H, W)`` image, radius ceil(3 sigma), reflected borders."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-x * x / (2 * sigma * sigma))
    k = (k / k.sum()).view(1, 1, 1, -1).expand(3, 1, 1, -1)
    mode = "reflect" if min(img.shape[-2:]) > radius else "replicate"
    out = F.pad(img[None], (radius, radius, 0, 0), mode=mode)
    out = F.conv2d(out, k, groups=3)
    out = F.pad(out, (0, 0, radius, radius), mode=mode)
    return F.conv2d(out, k.transpose(2, 3), groups=3)[0]


def cutmix_box(size: int, g: torch.Generator, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
               aspect: tuple[float, float] = (0.3, 1 / 0.3), tries: int = 1000) -> torch.Tensor:
    """UniMatch's ``obtain_cutmix_box``: with probability ``p`` one box inside a ``size x size``
    crop, area ``a * size^2`` with a uniform in ``area``, height / width uniform in ``aspect``,
    top-left corner uniform, redrawn until the box fits.

    Returns:
        ``(size, size)`` bool, True inside the box (all False without one, or when no draw fits
        in ``tries``). The box has ``int(sqrt(a s^2 r))`` rows and ``int(sqrt(a s^2 / r))`` columns.
    """
    mask = torch.zeros(size, size, dtype=torch.bool)
    if _uniform(g) >= p:
        return mask
    target = _uniform(g, *area) * size * size
    for _ in range(tries):
        ratio = _uniform(g, *aspect)
        w, h = int(math.sqrt(target / ratio)), int(math.sqrt(target * ratio))
        x, y = int(_uniform(g) * size), int(_uniform(g) * size)
        if x + w <= size and y + h <= size:
            mask[y:y + h, x:x + w] = True
            return mask
    return mask


def cutout_box(size: int, g: torch.Generator, side: float = 0.1) -> torch.Tensor:
    """One square of ``round(side * size)`` pixels inside a ``size x size`` crop (PseudoSeg's 50 x 50
    on 513 crops is ``side`` 0.1), top-left corner uniform. ``(size, size)`` bool, True inside."""
    s = max(1, min(size, round(side * size)))
    y, x = int(_uniform(g) * (size - s + 1)), int(_uniform(g) * (size - s + 1))
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[y:y + s, x:x + s] = True
    return mask


def mix(own: torch.Tensor, partner: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """CutMix of one image's tensor with its partner's: the partner's values inside ``box``.

    Args:
        own, partner: ``(..., H, W)`` tensors of one shape (images, labels, confidences, masks).
        box: ``(H, W)`` bool.
    """
    return torch.where(box, partner, own)


@dataclass(frozen=True)
class StrongAug:
    """A strong view: which ops (subset of ``OPS``) and their parameters.

    ``colour`` (torchvision ColorJitter ``jitter`` with probability ``colour_p``), ``grey``
    (probability ``grey_p``), ``blur`` (sigma uniform in ``blur_sigma``, probability ``blur_p``),
    ``cutmix`` (:func:`cutmix_box` with ``cutmix_p``, ``cutmix_area``, ``cutmix_aspect``) and
    ``cutout`` (:func:`cutout_box` of ``cutout_side``, its pixels leave the loss).
    """

    ops: tuple[str, ...]
    jitter: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.25)
    colour_p: float = 0.8
    grey_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    cutmix_p: float = 0.5
    cutmix_area: tuple[float, float] = (0.02, 0.4)
    cutmix_aspect: tuple[float, float] = (0.3, 1 / 0.3)
    cutout_side: float = 0.1

    def __post_init__(self):
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise ValueError(f"StrongAug: unknown op '{unknown[0]}', expected some of {', '.join(OPS)}")

    def photometric(self, img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``(3, H, W)`` in [0, 1] -> the same image after this view's colour, grey and blur ops.
        Each op draws its coin (and parameters) from ``g`` whether or not it fires, so the draws
        of one op never shift another's."""
        coins = [_uniform(g) for _ in range(3)]
        sigma = _uniform(g, *self.blur_sigma)
        jitter_seed = int(torch.randint(0, 2**62, (), generator=g))
        if "colour" in self.ops and coins[0] < self.colour_p:
            img = colour_jitter(img, torch.Generator().manual_seed(jitter_seed), *self.jitter)
        if "grey" in self.ops and coins[1] < self.grey_p:
            img = grey(img).expand(3, -1, -1).clone()
        if "blur" in self.ops and coins[2] < self.blur_p:
            img = gaussian_blur(img, sigma)
        return img

    def cutmix(self, size: int, g: torch.Generator) -> torch.Tensor:
        """The CutMix box of one image (all False when this view does not mix)."""
        if "cutmix" not in self.ops:
            return torch.zeros(size, size, dtype=torch.bool)
        return cutmix_box(size, g, self.cutmix_p, self.cutmix_area, self.cutmix_aspect)

    def cutout(self, size: int, g: torch.Generator) -> torch.Tensor:
        """The cutout box of one image (all False when this view has no cutout)."""
        if "cutout" not in self.ops:
            return torch.zeros(size, size, dtype=torch.bool)
        return cutout_box(size, g, self.cutout_side)


def parse_ops(text: str) -> tuple[str, ...]:
    """``"colour,grey,blur,cutmix"`` (or ``none``) -> the op names; ValueError names an unknown one."""
    if text.strip() in ("", "none"):
        return ()
    ops = tuple(t.strip() for t in text.split(","))
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"unknown strong-view op '{unknown[0]}', expected a comma list of {', '.join(OPS)} or none")
    return ops
