"""Per-group histograms with one bin per float16 value, accumulated in place.

The compiled kernel (``torch.ops.noisyseg.float16_histogram_``) takes one pass over the values;
the pure-torch reference builds sort keys and a combined bin index over several passes and a
bincount with a fresh ``G x 65536`` result. Around it, the helpers every user of such histograms
shares: the order keys and their inverse (``float16_order_keys``, ``float16_from_keys``), and
histograms of values of any dtype per group (``grouped_histograms``) or per flag
(``split_histograms``).
"""

from __future__ import annotations

import torch

from noisyseg.ops._ext import has_op

__all__ = ["BINS", "float16_histogram_", "float16_histogram_reference_", "float16_order_keys", "float16_from_keys",
           "grouped_histograms", "split_histograms"]

BINS = 1 << 16


def float16_order_keys(scores: torch.Tensor) -> torch.Tensor:
    """Maps values, rounded to float16, to int32 keys in 0..65535 that sort like the values (NaN excluded).

    With b the float16 bits read as int16: b ^ 0x8000 for b >= 0, and ~b for b < 0 (negative floats
    sort in reverse bit order); ``b ^ ((b >> 15) | 0x8000)`` is both at once.
    """
    bits = scores.clamp(-65504, 65504).to(torch.float16).contiguous().view(torch.int16).to(torch.int32)
    return bits ^ ((bits >> 15) | 0x8000)


def float16_from_keys(keys: torch.Tensor) -> torch.Tensor:
    """The inverse of ``float16_order_keys``: float32 values of the keys."""
    keys = keys.to(torch.int64)
    bits = torch.where(keys >= 0x8000, keys & 0x7FFF, 0xFFFF - keys)
    return bits.to(torch.int16).view(torch.float16).float()


def _check(counts: torch.Tensor, values: torch.Tensor, groups: torch.Tensor | None, valid: torch.Tensor | None) -> None:
    if counts.dtype != torch.int64 or counts.dim() != 2 or counts.shape[1] != BINS or not counts.is_contiguous():
        raise ValueError(f"float16_histogram_: counts must be contiguous int64 [G, {BINS}], "
                         f"got {counts.dtype} {tuple(counts.shape)}")
    if values.dtype != torch.float16:
        raise ValueError(f"float16_histogram_: values must be float16, got {values.dtype}")
    for name, t, dtype in (("groups", groups, torch.int64), ("valid", valid, torch.bool)):
        if t is not None and (t.dtype != dtype or t.numel() != values.numel()):
            raise ValueError(f"float16_histogram_: {name} must be {dtype} with values' {values.numel()} elements, "
                             f"got {t.dtype} {tuple(t.shape)}")


def float16_histogram_(counts: torch.Tensor, values: torch.Tensor, groups: torch.Tensor | None = None,
                       valid: torch.Tensor | None = None) -> torch.Tensor:
    """Adds ``values`` into ``counts`` in place and returns ``counts``.

    Args:
        counts: (G, 65536) int64, contiguous, on values' device. Bin k of group g counts the values
            whose :func:`float16_order_keys` key is k.
        values: float16, any shape; inf and NaN are not counted.
        groups: optional int64 with values' number of elements, group ids in 0..G-1 (0 when None);
            an id outside raises before any count changes.
        valid: optional bool with values' number of elements; only True entries count.
    """
    _check(counts, values, groups, valid)
    if has_op("float16_histogram_") and values.device.type in ("cpu", "cuda"):
        torch.ops.noisyseg.float16_histogram_(counts, values, groups, valid)
        return counts
    return float16_histogram_reference_(counts, values, groups, valid)


def float16_histogram_reference_(counts: torch.Tensor, values: torch.Tensor, groups: torch.Tensor | None = None,
                                 valid: torch.Tensor | None = None) -> torch.Tensor:
    """Pure-torch :func:`float16_histogram_` (any device)."""
    _check(counts, values, groups, valid)
    G = counts.shape[0]
    values = values.reshape(-1)
    if groups is not None:
        groups = groups.reshape(-1)
        if groups.numel() and (int(groups.min()) < 0 or int(groups.max()) >= G):
            bad = int(groups.min()) if int(groups.min()) < 0 else int(groups.max())
            raise RuntimeError(f"float16_histogram_: group ids must lie in 0..{G - 1}, found {bad}")
    keep = torch.isfinite(values) if valid is None else torch.isfinite(values) & valid.reshape(-1)
    code = float16_order_keys(values) + (0 if groups is None else groups.to(torch.int32) * BINS)
    code = torch.where(keep, code, G * BINS)
    counts += torch.bincount(code, minlength=G * BINS + 1)[:G * BINS].view(G, BINS)
    return counts


def grouped_histograms(values: torch.Tensor, group: torch.Tensor, groups: int,
                       valid: torch.Tensor | None = None, into: torch.Tensor | None = None) -> torch.Tensor:
    """Counts of ``values`` per group (``group`` ids in 0..groups-1) and float16 value
    (``float16_order_keys`` bins), over finite (and ``valid``) entries: a ``(groups, 65536)`` int64
    tensor on values' device, added to ``into`` when given (which is returned). Any shapes that
    broadcast alike, any device."""
    if values.dtype != torch.float16:  # values beyond float16's range count in its extreme bins
        values = torch.where(torch.isfinite(values), values.clamp(-65504, 65504), torch.nan).to(torch.float16)
    values, group = torch.broadcast_tensors(values, group)
    if valid is not None:
        valid = torch.broadcast_to(valid, values.shape)
    if into is None:
        into = torch.zeros(groups, BINS, dtype=torch.int64, device=values.device)
    return float16_histogram_(into, values, group.to(torch.int64), valid)


def split_histograms(values: torch.Tensor, flag: torch.Tensor,
                     valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``grouped_histograms`` with two groups: where ``flag`` is False, and where it is True."""
    counts = grouped_histograms(values, flag, 2, valid).cpu()
    return counts[0], counts[1]
