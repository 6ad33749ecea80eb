"""``common_label_issues`` and ``display_issues``: cleanlab.segmentation.summary's, plus the photo."""

from __future__ import annotations

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.issues.inputs import Images
from noisyseg.issues.table import make_table
from noisyseg.ops.label_confidence import label_confidence

COLUMNS = ["given_label", "predicted_label", "num_pixel_issues"]
DEFAULT_TOP = 20


def confusion_counts(issues, labels, pred_probs, *, ignore_index: int = IGNORE_INDEX, batch_size: int | None = None) -> np.ndarray:
    """``(K, K)`` int64: issue pixels by (given label, most probable class), ignored pixels left out."""
    images = Images(labels, pred_probs, ignore_index=ignore_index, batch_size=batch_size)
    flags, _ = _images_of(issues, len(images))
    K = images.num_classes
    counts = torch.zeros(K * K, dtype=torch.int64)
    for b in images.batches():
        best = label_confidence(b.probs, b.labels).best
        issue = torch.from_numpy(np.stack([np.asarray(f, bool) for f in flags[b.start: b.start + len(b.labels)]]))
        if issue.shape != b.labels.shape:
            raise ValueError(f"issues must match labels' shape, got {tuple(issue.shape[1:])} for image {b.start} "
                             f"of labels {tuple(b.labels.shape[1:])}")
        at = issue & b.valid
        counts += torch.bincount((b.labels[at] * K + best[at]), minlength=K * K)
    return counts.reshape(K, K).numpy()


def common_label_issues(issues, labels, pred_probs, *, class_names: list[str] | None = None,
                        exclude: list[int] | None = None, top: int | None = None, verbose: bool = True,
                        ignore_index: int = IGNORE_INDEX, batch_size: int | None = None):
    """The most frequent (given label, predicted label) pairs among the issue pixels.

    Args:
        issues: ``(N, H, W)`` bool (or a list of ``(H_i, W_i)``), e.g. from ``find_label_issues``.
        labels, pred_probs: as for :func:`noisyseg.find_label_issues`.
        class_names: names of the K classes (default: the ids as strings).
        exclude: predicted classes not to count (as cleanlab: the given label is not filtered).
        top: at most this many rows (default 20).
        verbose: print one line per row, as cleanlab does.

    Returns:
        A table (pandas DataFrame when pandas is installed) with columns ``given_label``,
        ``predicted_label``, ``num_pixel_issues``, most frequent first (ties: by given, then
        predicted class id).
    """
    top = DEFAULT_TOP if top is None else top
    counts = confusion_counts(issues, labels, pred_probs, ignore_index=ignore_index, batch_size=batch_size)
    K = counts.shape[0]
    if exclude:
        counts[:, [k for k in exclude if 0 <= k < K]] = 0
    names = [str(k) for k in range(K)] if class_names is None else list(class_names)
    given, predicted = np.nonzero(counts[: len(names)])
    order = np.argsort(-counts[given, predicted], kind="stable")[:top]
    rows = [[names[given[i]], names[predicted[i]], int(counts[given[i], predicted[i]])] for i in order]
    if verbose:
        for g, p, n in rows:
            print(f"Class '{g}' is potentially mislabeled as class for '{p}' {n} pixels in the dataset")
    return make_table(COLUMNS, rows)


def _images_of(arrays, n: int) -> tuple[list[np.ndarray], bool]:
    if isinstance(arrays, (list, tuple)):
        if len(arrays) != n:
            raise ValueError(f"issues must have one mask per image: {len(arrays)} masks for {n} images")
        return [np.asarray(a) for a in arrays], False
    arrays = np.asarray(arrays)
    if arrays.ndim != 3 or len(arrays) != n:
        raise ValueError(f"issues must have a shape of (N, H, W) with N={n}, got {arrays.shape}")
    return list(arrays), True


def display_issues(issues, *, labels=None, pred_probs=None, class_names: list[str] | None = None,
                   exclude: list[int] | None = None, top: int | None = None, images=None,
                   palette: list[list[int]] | None = None, ignore_index: int = IGNORE_INDEX, **kwargs) -> None:
    """Shows the images with the most issue pixels, one matplotlib figure each: the photo with
    its issues in red (when ``images`` are given), the given label, the prediction, and the issues.

    Args:
        issues, labels, pred_probs, class_names, exclude, top: as cleanlab's (``exclude``: classes
            whose given-label pixels are not drawn as issues).
        images: optional ``(N, H, W, 3)`` uint8 photos (or a list), drawn with the issues over them.
        palette: ``[r, g, b]`` per class (default: the Pascal VOC colour map).
        **kwargs: passed to ``matplotlib.pyplot.show``.
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        raise ImportError("display_issues needs matplotlib: pip install matplotlib") from None
    from noisyseg.io.palette import voc_palette
    from noisyseg.render.images import colour_table, overlay

    exclude = list(exclude or [])
    if labels is None and exclude:
        raise ValueError("Provide labels to allow class exclusion")
    flags, _ = _images_of(issues, len(issues))
    top = min(DEFAULT_TOP if top is None else top, len(flags))
    order = np.argsort([-int(np.count_nonzero(f)) for f in flags], kind="stable")[:top]
    label_list = _images_of(labels, len(flags))[0] if labels is not None else None
    prob_list = _images_of_probs(pred_probs, len(flags)) if pred_probs is not None else None
    photo_list = _images_of_photos(images, len(flags)) if images is not None else None
    K = prob_list[0].shape[0] if prob_list else (max(int(np.max(np.where(m == ignore_index, 0, m))) for m in label_list) + 1
                                                 if label_list else 0)
    colours = colour_table(palette or voc_palette(max(K, 1)))
    if class_names is not None and K:
        legend = plt.figure(figsize=(min(2 + 1.6 * len(class_names), 20), 1))
        legend.legend(handles=[Patch(color=colours[k] / 255, label=n) for k, n in enumerate(class_names)],
                      loc="center", ncol=min(len(class_names), 10), frameon=False)
        plt.show(**kwargs)
        plt.close(legend)
    for i in order:
        shown = flags[i].astype(bool)
        if label_list is not None:
            shown = shown & (label_list[i] != ignore_index)
            if exclude:
                shown &= ~np.isin(label_list[i], exclude)
        panels = []
        if photo_list is not None:
            panels.append(("Image with suggested errors (red)", overlay(np.asarray(photo_list[i], np.uint8), shown)))
        if label_list is not None:
            panels.append(("Given labels", colours[np.asarray(label_list[i]).astype(np.int64) & 255]))
        if prob_list is not None:
            panels.append(("Argmaxed prediction probabilities", colours[np.argmax(prob_list[i], axis=0)]))
        panels.append((f"Image {i}: suggested errors (in red)", None))
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5), squeeze=False)
        for ax, (title, picture) in zip(axes[0], panels):
            if picture is None:
                ax.imshow(shown, cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(picture, interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        plt.show(**kwargs)
        plt.close(fig)


def _images_of_probs(pred_probs, n: int) -> list[np.ndarray]:
    probs = list(pred_probs) if isinstance(pred_probs, (list, tuple)) else list(np.asarray(pred_probs))
    if len(probs) != n:
        raise ValueError(f"pred_probs must have one map per image: {len(probs)} for {n} images")
    return probs


def _images_of_photos(images, n: int) -> list[np.ndarray]:
    photos = list(images) if isinstance(images, (list, tuple)) else list(np.asarray(images))
    if len(photos) != n:
        raise ValueError(f"images must have one photo per image: {len(photos)} for {n} issue masks")
    return photos
