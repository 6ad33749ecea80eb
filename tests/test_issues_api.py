"""The cleanlab-compatible API: same flags, scores and summaries as cleanlab.segmentation where it is
installed; ignore_index and lists of differently sized images beyond it."""

import subprocess
import sys

import numpy as np
import pytest

import noisyseg


def noisy_problem(seed=0, N=6, K=4, H=20, W=30, dtype=np.float64, absent_class=False):
    """Labels ``(N, H, W)`` with ~20% swapped and probs ``(N, K, H, W)`` favouring the truth."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, K - 1 if absent_class else K, (N, H, W))
    logits = rng.normal(0, 1, (N, K, H, W))
    np.put_along_axis(logits, gt[:, None], np.take_along_axis(logits, gt[:, None], 1) + 2, 1)
    probs = np.exp(logits)
    probs /= probs.sum(1, keepdims=True)
    swap = rng.integers(0, K - 1 if absent_class else K, (N, H, W))
    labels = np.where(rng.random((N, H, W)) < 0.2, swap, gt)
    return labels, probs.astype(dtype)


@pytest.fixture(scope="module")
def cl():
    pytest.importorskip("cleanlab")
    pytest.importorskip("pandas")
    from cleanlab.segmentation import filter, rank, summary

    return filter, rank, summary


@pytest.mark.parametrize("case", [dict(seed=0), dict(seed=1, dtype=np.float32, K=5), dict(seed=2, absent_class=True),
                                  dict(seed=3, N=2, K=2, H=9, W=7)])
def test_same_as_cleanlab(cl, case):
    filter, rank, summary = cl
    labels, probs = noisy_problem(**case)
    ours = noisyseg.find_label_issues(labels, probs, verbose=False)
    theirs = filter.find_label_issues(labels, probs, verbose=False, n_jobs=1)
    assert ours.dtype == bool and ours.shape == labels.shape
    assert ours.sum() > 0
    np.testing.assert_array_equal(ours, theirs)

    image_scores, pixel_scores = noisyseg.get_label_quality_scores(labels, probs, verbose=False)
    their_image, their_pixel = rank.get_label_quality_scores(labels, probs, verbose=False)
    assert image_scores.shape == (len(labels),) and pixel_scores.shape == labels.shape
    np.testing.assert_allclose(image_scores, their_image, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pixel_scores, their_pixel, rtol=0, atol=0)
    for kwargs in (dict(temperature=0.5), dict(method="num_pixel_issues")):
        np.testing.assert_allclose(noisyseg.get_label_quality_scores(labels, probs, verbose=False, **kwargs)[0],
                                   rank.get_label_quality_scores(labels, probs, verbose=False, n_jobs=1, **kwargs)[0],
                                   rtol=0, atol=1e-12)

    K = probs.shape[1]
    names = [f"c{k}" for k in range(K)]
    for kwargs in (dict(), dict(class_names=names), dict(class_names=names, exclude=[0], top=3)):
        a = noisyseg.common_label_issues(ours, labels, probs, verbose=False, **kwargs)
        b = summary.common_label_issues(theirs, labels, probs, verbose=False, **kwargs)
        assert list(a.columns) == list(b.columns)
        assert a.to_dict("records") == b.to_dict("records")


def test_ignore_index_is_left_out(cl):
    """Ignored pixels take no part: the flags of the others are cleanlab's on those pixels alone
    (its rule depends only on the pixels, in order)."""
    filter, rank, _ = cl
    labels, probs = noisy_problem(seed=4)
    ignored = np.random.default_rng(5).random(labels.shape) < 0.3
    labels = np.where(ignored, 255, labels)
    ours = noisyseg.find_label_issues(labels, probs, verbose=False)
    assert not ours[ignored].any()
    valid_labels = labels[~ignored][None, None]
    valid_probs = np.moveaxis(probs, 1, -1)[~ignored].T[None, :, None]
    theirs = filter.find_label_issues(valid_labels, valid_probs, verbose=False, n_jobs=1)
    np.testing.assert_array_equal(ours[~ignored], theirs.reshape(-1))

    image_scores, pixel_scores = noisyseg.get_label_quality_scores(labels, probs, verbose=False)
    assert np.isnan(pixel_scores[ignored]).all()
    for i in range(len(labels)):
        v = ~ignored[i]
        one, _ = rank.get_label_quality_scores(labels[i][v][None, None], probs[i][:, v][None, :, None], verbose=False)
        assert image_scores[i] == pytest.approx(one[0], abs=1e-12)


def test_lists_of_differently_sized_images(cl):
    filter, rank, summary = cl
    rng = np.random.default_rng(6)
    parts = [noisy_problem(seed=10 + i, N=1, H=int(rng.integers(5, 30)), W=int(rng.integers(5, 30))) for i in range(5)]
    labels = [lab[0] for lab, _ in parts]
    probs = [p[0] for _, p in parts]
    ours = noisyseg.find_label_issues(labels, probs, verbose=False)
    assert isinstance(ours, list) and [m.shape for m in ours] == [lab.shape for lab in labels]
    flat_labels = np.concatenate([lab.reshape(-1) for lab in labels])[None, None]
    flat_probs = np.concatenate([p.reshape(p.shape[0], -1) for p in probs], axis=1)[None, :, None]
    theirs = filter.find_label_issues(flat_labels, flat_probs, verbose=False, n_jobs=1)
    np.testing.assert_array_equal(np.concatenate([m.reshape(-1) for m in ours]), theirs.reshape(-1))

    image_scores, pixel_scores = noisyseg.get_label_quality_scores(labels, probs, verbose=False)
    assert isinstance(pixel_scores, list)
    for i, (lab, p) in enumerate(zip(labels, probs)):
        one, pix = rank.get_label_quality_scores(lab[None], p[None], verbose=False)
        assert image_scores[i] == pytest.approx(one[0], abs=1e-12)
        np.testing.assert_array_equal(pixel_scores[i], pix[0])
    a = noisyseg.common_label_issues(ours, labels, probs, verbose=False)
    b = summary.common_label_issues(theirs, flat_labels, flat_probs, verbose=False)
    assert a.to_dict("records") == b.to_dict("records")


def test_rule_by_hand():
    """One image, 2 classes: thresholds t0 = mean(.9, .8, .3) = 2/3, t1 = mean(.7, .1) = .4. Pixels
    whose argmax disagrees and reaches its class's threshold: (label 0, p0=.3 -> class 1 at .7) and
    (label 1, p1=.1 -> class 0 at .9): N = 2, the two lowest own-label probabilities are flagged."""
    p0 = np.array([0.9, 0.8, 0.3, 0.3, 0.9])
    labels = np.array([[[0, 0, 0, 1, 1]]])
    probs = np.stack([p0, 1 - p0])[None, :, None]
    flags = noisyseg.find_label_issues(labels, probs, verbose=False)
    np.testing.assert_array_equal(flags[0, 0], [False, False, True, False, True])
    scores, pixels = noisyseg.get_label_quality_scores(labels, probs, verbose=False)
    np.testing.assert_allclose(pixels[0, 0], [0.9, 0.8, 0.3, 0.7, 0.1])
    w = np.exp((1 - pixels[0, 0]) / 0.1)
    assert scores[0] == pytest.approx((w * pixels[0, 0]).sum() / w.sum())


def test_table_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    labels, probs = noisy_problem(seed=7)
    flags = noisyseg.find_label_issues(labels, probs, verbose=False)
    table = noisyseg.common_label_issues(flags, labels, probs, class_names=list("abcd"), top=4, verbose=False)
    assert type(table).__name__ == "Table" and len(table) == 4
    counts = table["num_pixel_issues"]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    assert set(table.to_dict()[0]) == {"given_label", "predicted_label", "num_pixel_issues"}
    assert "given_label" in repr(table)


def test_verbose_prints_like_cleanlab(capsys):
    labels, probs = noisy_problem(seed=8)
    flags = noisyseg.find_label_issues(labels, probs, verbose=False)
    noisyseg.common_label_issues(flags, labels, probs, top=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Class '") and "pixels in the dataset" in lines[0]


def test_display_issues(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda **kw: shown.append([ax.get_title() for ax in plt.gcf().axes]))
    labels, probs = noisy_problem(seed=9, N=4)
    flags = noisyseg.find_label_issues(labels, probs, verbose=False)
    photos = np.zeros((4, 20, 30, 3), np.uint8)
    assert noisyseg.display_issues(flags, labels=labels, pred_probs=probs, class_names=list("abcd"), top=2,
                                   images=photos) is None
    assert len(shown) == 3  # the legend, then two images
    assert shown[1][0].startswith("Image with suggested errors") and "Given labels" in shown[1]
    worst = int(np.argmax(flags.sum((1, 2))))
    assert shown[1][-1].startswith(f"Image {worst}:")
    with pytest.raises(ValueError, match="Provide labels"):
        noisyseg.display_issues(flags, exclude=[1])


def test_bad_inputs():
    labels, probs = noisy_problem(seed=0)
    with pytest.raises(ValueError, match="matching dimensions"):
        noisyseg.find_label_issues(labels[:, :5], probs, verbose=False)
    with pytest.raises(ValueError, match=r"class ids in 0..3 or ignore_index=255, found 7 in image 2"):
        bad = labels.copy()
        bad[2, 3, 4] = 7
        noisyseg.find_label_issues(bad, probs, verbose=False)
    with pytest.raises(ValueError, match="shape of"):
        noisyseg.get_label_quality_scores(labels[0], probs, verbose=False)
    with pytest.raises(ValueError, match="Invalid Method"):
        noisyseg.get_label_quality_scores(labels, probs, method="mean", verbose=False)
    with pytest.raises(ValueError, match="Batch size"):
        noisyseg.find_label_issues(labels, probs, batch_size=0, verbose=False)


def test_batch_size_does_not_change_results():
    labels, probs = noisy_problem(seed=11, N=5)
    a = noisyseg.find_label_issues(labels, probs, verbose=False)
    b = noisyseg.find_label_issues(labels, probs, batch_size=1, verbose=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(noisyseg.get_label_quality_scores(labels, probs, batch_size=1, verbose=False)[0],
                                  noisyseg.get_label_quality_scores(labels, probs, verbose=False)[0])


def test_import_stays_cheap():
    code = "import sys, noisyseg; assert 'torch' not in sys.modules and 'noisyseg.issues' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert callable(noisyseg.find_label_issues)
    with pytest.raises(AttributeError):
        noisyseg.no_such_thing
