"""urn (URN: Li et al., "Uncertainty Estimation via Response Scaling for Pseudo-mask Noise
Mitigation"): uncertainty by response scaling, and loss weights from it.

For each class c present (in the labels when given, as the paper's pseudo-mask; else in the
prediction's argmax), and each scale s in S: raise channel c to the power s (the other channels
unchanged; only present channels are kept, eq. 5-6), refine with a dense CRF (eq. 7) and take the
binary mask argmax == c (eq. 8). The uncertainty is the sample variance of the S masks per class
(eq. 9), its max over classes, min-max normalised per image (eq. 10). Weights: W = 1 - U and

- ``mode="hard"`` (eq. 12): 1 where W >= t, else t (t = 0.05);
- ``mode="soft"``: max(W, t).

With S binary masks the variance takes only the values k (S - k) / (S (S - 1)), k = 0..S
(4 levels for S = 6), so after normalisation the hard weights are t only at the top level.

The CRF is ``noisyseg.graph.dense_crf`` (pydensecrf, shared with the ``crf`` corrector): a Gaussian
smoothness kernel (sxy=3, compat=3) and, when the image is given, the appearance kernel (sxy=80,
srgb=13, compat=10). Without an image (the detection interface sees probs and labels only) the
smoothness kernel alone is the pairwise term. The S·K CRFs of an image are independent;
``workers > 1`` runs them in a process pool.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.graph.dense_crf import dense_crf  # also importable from here, as before
from noisyseg.params import Param
from noisyseg.strategies.spec import StrategySpec
from noisyseg.strategies.weighting.base import WeightInputs, Weighter

VOC_SCALES = (0.15, 0.2, 0.25, 4.0, 5.0, 6.0)
COCO_SCALES = (0.4, 0.5, 0.6, 2.0, 3.0, 4.0)
_TINY = 1e-8


def _scaled(probs: np.ndarray, k: int, s: float) -> np.ndarray:
    out = probs.copy()
    out[k] = np.power(np.maximum(out[k], 0.0), s)
    return out


def _class_masks(probs: np.ndarray, image: np.ndarray | None, k: int, scales: tuple[float, ...],
                 crf: bool, iterations: int) -> np.ndarray:
    """``(S, H, W)`` bool: argmax == k after scaling channel k by each s (and the CRF)."""
    masks = []
    for s in scales:
        scaled = _scaled(probs, k, s)
        if crf:
            scaled = dense_crf(scaled, image, iterations)
        masks.append(scaled.argmax(0) == k)
    return np.stack(masks)


def _class_masks_task(args) -> np.ndarray:
    return _class_masks(*args)


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    """A process pool kept for the life of the process (CRFs hold the GIL, so threads do not help)."""
    if workers not in _POOLS:
        import multiprocessing as mp

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=mp.get_context(method))
    return _POOLS[workers]


def present_classes(probs: torch.Tensor, labels: torch.Tensor | None = None) -> list[int]:
    """Sorted class ids of the labels (255 skipped) when given, else of the argmax of ``probs (C, H, W)``."""
    source = labels[labels != IGNORE_INDEX] if labels is not None else probs.argmax(0)
    return sorted(int(c) for c in torch.unique(source).tolist())


def normalise_minmax(v: torch.Tensor) -> torch.Tensor:
    """(v - min) / (max - min) over the last two dims; 0 where max == min."""
    lo = v.amin(dim=(-2, -1), keepdim=True)
    hi = v.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (v - lo) / span.clamp_min(1e-12), torch.zeros_like(v))


def _uncertainty_tasks(probs: torch.Tensor, image, present, scales, crf, iterations):
    p = probs.detach().float().cpu().numpy()
    keep = present if present else list(range(p.shape[0]))
    sub = np.ascontiguousarray(p[keep])
    img = None if image is None else (image.cpu().numpy() if torch.is_tensor(image) else np.asarray(image))
    return [(sub, img, k, tuple(scales), crf, iterations) for k in range(len(keep))]


def _variance_map(masks: list[np.ndarray], H: int, W: int) -> torch.Tensor:
    if not masks:
        return torch.zeros(H, W)
    m = torch.from_numpy(np.stack(masks)).float()         # (K, S, H, W)
    var = m.var(dim=1, unbiased=m.shape[1] > 1)           # eq. 9 (1 / (S - 1))
    return normalise_minmax(var.amax(dim=0))              # eq. 10


def urn_uncertainty(probs: torch.Tensor, image: torch.Tensor | np.ndarray | None = None,
                    scales: tuple[float, ...] = VOC_SCALES, crf: bool = True, labels: torch.Tensor | None = None,
                    iterations: int = 5, workers: int = 0) -> torch.Tensor:
    """URN's uncertainty map of one image: ``urn_uncertainty_batch`` on a batch of one.

    Args:
        probs: (C, H, W) float probabilities.
        image: optional (H, W, 3) uint8 RGB for the CRF's appearance kernel.
        scales: the power factors S (VOC default; ``COCO_SCALES`` for many small objects).
        crf: refine each scaled map with a dense CRF (False: plain argmax, fast, for online use).
        labels: optional (H, W) ids; their classes are the present ones (else the argmax's).
        iterations: mean-field iterations per CRF.
        workers: > 1 runs the K classes' CRFs in a process pool.

    Returns:
        U (H, W) float32 in [0, 1] on probs' device; all zeros when the variance is constant.

    Example:
        >>> p = torch.softmax(torch.randn(3, 16, 16), 0)
        >>> u = urn_uncertainty(p, crf=False)
        >>> bool((u >= 0).all() and (u <= 1).all())
        True
    """
    if probs.dim() != 3:
        raise ValueError(f"urn_uncertainty: probs must be (C, H, W), got {tuple(probs.shape)}")
    return urn_uncertainty_batch(probs[None], None if image is None else image[None], scales, crf,
                                 None if labels is None else labels[None], iterations, workers)[0]


def urn_uncertainty_batch(probs: torch.Tensor, images: torch.Tensor | None = None,
                          scales: tuple[float, ...] = VOC_SCALES, crf: bool = True, labels: torch.Tensor | None = None,
                          iterations: int = 5, workers: int = 0) -> torch.Tensor:
    """``urn_uncertainty`` for a batch: probs (B, C, H, W), images (B, H, W, 3) uint8, labels (B, H, W).

    Without the CRF the masks are computed in torch on probs' device for the whole batch at once.
    With it, the S·K CRFs of all images go to one process pool when ``workers > 1``.

    Returns:
        (B, H, W) float32 in [0, 1].
    """
    if probs.dim() != 4:
        raise ValueError(f"urn_uncertainty_batch: probs must be (B, C, H, W), got {tuple(probs.shape)}")
    B, C, H, W = probs.shape
    presents = [present_classes(probs[i], None if labels is None else labels[i]) for i in range(B)]
    if not crf:
        logp = torch.log(probs.float().clamp_min(_TINY))
        mask = torch.zeros(B, C, dtype=torch.bool, device=probs.device)
        for i, pres in enumerate(presents):
            mask[i, pres] = True
        # Absent channels are dropped (eq. 5): -inf never wins the argmax.
        logp = logp.masked_fill(~mask[:, :, None, None], float("-inf"))
        var = torch.zeros(B, C, H, W, device=probs.device)
        for c in range(C):
            if not bool(mask[:, c].any()):
                continue
            hits = []
            for s in scales:
                scaled = logp.clone()
                scaled[:, c] = logp[:, c] * s  # log(p^s)
                hits.append((scaled.argmax(1) == c).float())
            stack = torch.stack(hits, 1)
            var[:, c] = stack.var(dim=1, unbiased=len(scales) > 1) * mask[:, c, None, None]
        return normalise_minmax(var.amax(dim=1))
    per_image = [_uncertainty_tasks(probs[i], None if images is None else images[i], presents[i], scales, crf, iterations)
                 for i in range(B)]
    flat = [t for tasks in per_image for t in tasks]
    if workers > 1 and len(flat) > 1:
        results = list(_pool(workers).map(_class_masks_task, flat))
    else:
        results = [_class_masks_task(t) for t in flat]
    out, start = [], 0
    for tasks in per_image:
        out.append(_variance_map(results[start:start + len(tasks)], H, W))
        start += len(tasks)
    return torch.stack(out).to(probs.device)


def urn_weights(uncertainty: torch.Tensor, t: float = 0.05, mode: str = "hard") -> torch.Tensor:
    """Weights from U: ``hard`` = 1 where 1 - U >= t else t (eq. 12); ``soft`` = max(1 - U, t)."""
    w = 1.0 - uncertainty
    if mode == "hard":
        return torch.where(w >= t, torch.ones_like(w), torch.full_like(w, t))
    if mode == "soft":
        return w.clamp_min(t)
    raise ValueError(f"urn_weights: mode must be 'hard' or 'soft', got {mode!r}")


def default_workers() -> int:
    """``workers=auto``: up to 8 processes, but none on machines with 2 cores or fewer, where the
    pool measured slower than the loop (bench/urn_crf.py: 0.46x on a shared 2-core box)."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(8, cores)


class Urn(Weighter):
    accepts = ("labels", "images")  # the labels' classes are the present ones; the image feeds the CRF

    def __init__(self, t: float = 0.05, mode: str = "hard", scales: str = "voc", crf: bool = True,
                 iterations: int = 5, workers: int | str = "auto"):
        self.t, self.mode, self.crf, self.iterations = t, mode, crf, iterations
        self.scales = parse_scales(scales)
        self.workers = default_workers() if workers == "auto" else int(workers)

    def uncertainty(self, probs: torch.Tensor, labels: torch.Tensor | None, images: torch.Tensor | None) -> torch.Tensor:
        return urn_uncertainty_batch(probs, images, self.scales, self.crf, labels, self.iterations, self.workers)

    def weigh(self, inputs: WeightInputs) -> torch.Tensor:
        u = self.uncertainty(inputs.probs, inputs.labels, inputs.images)
        return urn_weights(u, self.t, self.mode)


def parse_scales(text: str) -> tuple[float, ...]:
    """``voc``, ``coco`` or comma-separated positive numbers."""
    from noisyseg.errors import ParameterError

    if text == "voc":
        return VOC_SCALES
    if text == "coco":
        return COCO_SCALES
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise ParameterError(f"parameter 'scales' of urn: expected voc, coco or numbers like 0.5,2, found {text!r}") from None
    if len(scales) < 2 or any(s <= 0 for s in scales):
        raise ParameterError(f"parameter 'scales' of urn: expected at least 2 positive factors, found {text!r}")
    return scales


PARAMS = (
    Param("t", float, 0.05, "weight floor t; hard mode: pixels with 1 - U < t get t", min=0.0, max=1.0),
    Param("scales", str, "voc", "power factors: voc (0.15,0.2,0.25,4,5,6), coco (0.4,0.5,0.6,2,3,4) or a list"),
    Param("crf", bool, True, "dense CRF on each scaled map (off: plain argmax)"),
    Param("iterations", int, 5, "mean-field iterations per CRF", min=1, max=50),
    Param("workers", int, "auto", "processes for the CRFs (1 = in this process)", min=1, max=64, special=("auto",)),
)

SPEC = StrategySpec(
    kind="weighting",
    name="urn",
    summary="URN: variance of CRF masks under response scaling; weight t where 1 - U < t (hard) or max(1 - U, t)",
    factory=Urn,
    params=(Param("mode", str, "hard", "hard (paper eq. 12) or soft (max(1 - U, t))", choices=("hard", "soft")),
            *PARAMS),
)
