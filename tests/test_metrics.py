import numpy as np
import pytest

from noisyseg.metrics import CalibrationError, ConfusionMatrix, DetectionQuality, LabelQuality, ScoreRanking


def test_confusion_matrix_hand_example():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 255]])
    cm = ConfusionMatrix(3)
    cm.update(gt, pred)
    # kept pixels: (0,0) (0,1) (1,1) (1,1) (2,2) (2,0)
    np.testing.assert_array_equal(cm.matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx(np.mean([1 / 3, 2 / 3, 1 / 2]))
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)


def test_label_quality_coverage_and_precision():
    gt = np.array([[0, 1, 1, 255]])
    labels = np.array([[0, 255, 0, 1]])
    q = LabelQuality(2)
    q.update(gt, labels)
    s = q.summary()
    assert s["coverage"] == pytest.approx(2 / 3)
    assert s["precision"] == pytest.approx(1 / 2)


def test_detection_quality_counts():
    gt = np.array([[0, 0, 1, 1, 255]])
    noisy = np.array([[0, 1, 1, 0, 1]])   # truly noisy: positions 1 and 3
    flagged = np.array([[True, True, False, False, True]])
    q = DetectionQuality()
    q.update(gt, noisy, flagged)
    s = q.summary()
    assert s["precision"] == pytest.approx(1 / 2)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(1 / 2)
    assert s["noise_rate"] == pytest.approx(2 / 4)


def _brute_auroc(s, y):
    pos, neg = s[y], s[~y]
    return (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()


def _brute_ap(s, y):
    ap = prev = 0.0
    for v in np.unique(s)[::-1]:
        keep = s >= v
        r = (keep & y).sum() / y.sum()
        ap += (r - prev) * (keep & y).sum() / keep.sum()
        prev = r
    return ap


def test_ranking_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=3000), 1).astype(np.float16).astype(np.float32)  # many ties
    y = rng.random(3000) < 0.3
    s[y] += 0.7
    s = s.astype(np.float16).astype(np.float32)
    r = ScoreRanking()
    r.update(s[:1000], y[:1000])
    r.update(s[1000:], y[1000:])
    assert r.auroc() == pytest.approx(_brute_auroc(s, y), abs=1e-9)
    assert r.average_precision() == pytest.approx(_brute_ap(s, y), abs=1e-9)


def test_ranking_perfect_and_degenerate():
    r = ScoreRanking()
    r.update(np.array([0.1, 0.2, 5.0, 7.0]), np.array([False, False, True, True]))
    assert r.auroc() == 1.0 and r.average_precision() == 1.0
    empty = ScoreRanking()
    empty.update(np.array([1.0]), np.array([False]))
    assert np.isnan(empty.auroc())


def test_ece_closed_form():
    probs = np.zeros((2, 1, 4), np.float32)
    probs[0, 0] = [0.9, 0.9, 0.6, 0.6]
    probs[1, 0] = 1 - probs[0, 0]
    gt = np.array([[0, 1, 0, 0]])
    e = CalibrationError(bins=10)
    e.update(probs, gt)
    # bin 0.9: conf 0.9, acc 0.5 -> 0.4 over 2 px; bin 0.6: conf 0.6, acc 1 -> 0.4 over 2 px
    assert e.ece() == pytest.approx(0.4)
