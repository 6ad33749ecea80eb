"""The report's plots as PNG bytes, drawn with matplotlib (the ``report`` extra) without pyplot,
so no global backend or figure state is touched.

Each function takes what the report's streamed metrics hold and returns the PNG's bytes.
"""

from __future__ import annotations

import io

import numpy as np

INSTALL_HINT = "pip install 'noisyseg[report]' (or matplotlib)"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 5.0, height: float = 3.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def image_scores(scores: np.ndarray) -> bytes:
    """Histogram of per-image label-quality scores ``(N,)`` (NaN left out)."""
    fig, ax = _figure()
    finite = scores[np.isfinite(scores)]
    top = min(1.0, float(finite.max()) * 1.1) if finite.size and finite.max() > 0 else 1.0  # softmin scores crowd near 0
    ax.hist(finite, bins=40, range=(0, top), color="#4c72b0")
    ax.set_xlabel("image label-quality score (softmin of own-label probability)")
    ax.set_ylabel("images")
    ax.set_xlim(0, top)
    return _png(fig)


def score_histograms(values: np.ndarray, counts: dict[str, np.ndarray], xlabel: str) -> bytes:
    """Pixel histograms of a noise score, one line per group: ``values`` ``(V,)`` ascending bin
    values (NaN bins hold nothing), ``counts[name]`` ``(V,)`` pixel counts at each value."""
    fig, ax = _figure()
    ok = np.isfinite(values)
    total = sum(c[ok] for c in counts.values())
    if total.sum() == 0:
        ax.text(0.5, 0.5, "no pixels", ha="center", va="center", transform=ax.transAxes)
        return _png(fig)
    cdf = np.cumsum(total) / total.sum()
    v = values[ok]
    lo, hi = v[np.searchsorted(cdf, 0.001)], v[min(np.searchsorted(cdf, 0.999), len(v) - 1)]
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 61)
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, 59)
    for (name, c), colour in zip(counts.items(), ("#4c72b0", "#c44e52", "#55a868", "#8172b2")):
        binned = np.bincount(which, weights=c[ok].astype(np.float64), minlength=60)
        share = binned / max(binned.sum(), 1)
        ax.stairs(share, edges, label=f"{name} ({int(c[ok].sum()):,} px)", color=colour, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of the group's pixels")
    ax.legend(fontsize=8)
    return _png(fig)


def theta_curve(curve: list[dict]) -> bytes:
    """detect's θ calibration: kept precision and coverage against θ (``[{theta, precision, coverage}]``)."""
    fig, ax = _figure()
    theta = np.array([c["theta"] for c in curve], float)
    for key, colour in (("precision", "#c44e52"), ("coverage", "#4c72b0")):
        ax.plot(theta, [np.nan if c[key] is None else c[key] for c in curve], marker="o", ms=3, label=key, color=colour)
    ax.set_xlabel("θ (noise-score threshold)")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _png(fig)


def reliability(count: np.ndarray, correct: np.ndarray, confidence: np.ndarray, ece: float, against: str) -> bytes:
    """Reliability diagram over equal-width confidence bins (``(bins,)`` counts, correct counts
    and summed confidence), with the ECE in the title."""
    fig, ax = _figure(4.2, 4.0)
    bins = len(count)
    edges = np.linspace(0, 1, bins + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(count > 0, correct / count, np.nan)
        mean_conf = np.where(count > 0, confidence / count, np.nan)
    ax.bar(edges[:-1], np.nan_to_num(accuracy), width=1 / bins, align="edge", color="#4c72b0", edgecolor="white",
           label=f"accuracy against {against}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    ax.plot(mean_conf, accuracy, "o", color="#c44e52", ms=3, label="mean confidence of the bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {ece:.4f}")
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def precision_recall(recall: np.ndarray, precision: np.ndarray, noise_rate: float, flags: tuple[float, float] | None,
                     ap: float) -> bytes:
    """Precision-recall curve of the noise score against the true noise; ``flags`` the flagged
    pixels' (recall, precision) point."""
    fig, ax = _figure(4.2, 4.0)
    ax.plot(recall, precision, color="#4c72b0", label=f"noise score (AP {ap:.3f})")
    ax.axhline(noise_rate, color="grey", linestyle="--", linewidth=1, label=f"chance (noise rate {noise_rate:.3f})")
    if flags is not None and all(np.isfinite(flags)):
        ax.plot([flags[0]], [flags[1]], "o", color="#c44e52", label="flagged pixels")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (share of truly wrong pixels found)")
    ax.set_ylabel("precision")
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)
