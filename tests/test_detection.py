import numpy as np
import pytest
import torch

from noisyseg.plugins import get_strategy
from noisyseg.strategies.detection.base import Batch, DetectionContext
from noisyseg.strategies.detection.small_loss import LossHistogram, box_mean, calibrate_theta, pixel_loss


def _probs(B=2, C=4, H=8, W=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(B, C, H, W, generator=g) * 2, 1)


def _labels(B=2, H=8, W=9, C=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, C, (B, H, W), generator=g)
    lab[:, 0, :3] = 255
    return lab


def test_small_loss_fixed_theta():
    probs, labels = _probs(), _labels()
    det = get_strategy("detection", "small-loss").build({"theta": "0.7"})
    result = det.detect(probs, labels)
    loss, valid = pixel_loss(probs, labels)
    p = probs.gather(1, labels.clamp(max=3)[:, None]).squeeze(1)
    torch.testing.assert_close(loss[valid], -torch.log(p[valid]))
    assert torch.equal(result.flags, valid & (loss > 0.7))
    assert not result.flags[labels == 255].any()


def test_calibrate_theta_is_largest_meeting_target():
    rng = np.random.default_rng(0)
    losses = torch.from_numpy(np.round(rng.exponential(1.0, 4000), 2)).float().half().float()
    correct = torch.from_numpy(rng.random(4000) < np.exp(-losses.numpy()))
    hist = LossHistogram()
    hist.update(losses[:1500], correct[:1500])
    hist.update(losses[1500:], correct[1500:])
    theta, curve = calibrate_theta(hist, 0.9)
    best = -np.inf
    for t in np.unique(losses.numpy()):
        keep = losses.numpy() <= t
        if correct.numpy()[keep].mean() >= 0.9:
            best = max(best, t)
    assert theta == pytest.approx(best)
    chosen = next(c for c in curve if c["theta"] == theta)
    assert chosen["precision"] >= 0.9
    assert chosen["coverage"] == pytest.approx(float((losses <= theta).float().mean()))
    none_right = LossHistogram()
    none_right.update(losses, torch.zeros_like(correct))
    assert calibrate_theta(none_right, 0.5)[0] == -np.inf


def test_small_loss_auto_calibrates_on_other_split():
    probs, labels = _probs(seed=3), _labels(seed=4)
    gt = probs.argmax(1)  # the model is right wherever the label agrees with its argmax
    ctx = DetectionContext(4, batches=lambda: iter(()),
                           calibration_batches=lambda split: iter([Batch(["a", "b"], probs, labels, gt)]))
    det = get_strategy("detection", "small-loss").build({"theta": "auto", "calibrate_split": "val",
                                                         "target_precision": "1.0"})
    fitted = det.fit(ctx)
    kept = ~det.detect(probs, labels).flags & (labels != 255)
    assert (labels[kept] == gt[kept]).all()
    loss, valid = pixel_loss(probs, labels)
    loss = loss.half().float()  # θ lives at float16 precision
    wrong = valid & (labels != gt)
    first_wrong = float(loss[wrong].min())
    below = loss[valid & (loss < first_wrong)]
    assert fitted["theta"] == pytest.approx(float(below.max()))


@pytest.mark.parametrize("window", [1, 3, 7, 31])
def test_box_mean_is_mean_of_valid_pixels_in_window(window):
    g = torch.Generator().manual_seed(window)
    values = torch.rand(2, 13, 17, generator=g) * 20
    valid = torch.rand(2, 13, 17, generator=g) > 0.3
    got = box_mean(values, valid, window)
    r = window // 2
    for b, y, x in [(0, 0, 0), (1, 6, 8), (0, 12, 16), (1, 2, 15)] + [(0, i, (3 * i) % 17) for i in range(13)]:
        box = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
        v, m = values[b][box], valid[b][box]
        want = float(v[m].mean()) if m.any() else 0.0
        assert float(got[b, y, x]) == pytest.approx(want, rel=1e-5, abs=1e-5), (b, y, x)


def test_small_loss_window_scores_by_neighbourhood():
    # One pixel of a confidently-wrong region happens to agree with the model: alone it is kept,
    # with a window its neighbours' losses flag it; the window mean is what θ is compared to.
    C, H, W = 3, 9, 9
    labels = torch.zeros(1, H, W, dtype=torch.int64)
    probs = torch.full((1, C, H, W), 0.05)
    probs[:, 1] = 0.9                       # the model says class 1 everywhere...
    probs[:, :, 4, 4] = torch.tensor([0.9, 0.05, 0.05])  # ...except at the centre, where it agrees with label 0
    labels[0, 0, :] = 255
    one = get_strategy("detection", "small-loss").build({"theta": "1.0"}).detect(probs, labels)
    assert not one.flags[0, 4, 4] and one.flags[0, 5, 5]
    boxed = get_strategy("detection", "small-loss").build({"theta": "1.0", "window": "3"}).detect(probs, labels)
    assert boxed.flags[0, 4, 4] and not boxed.flags[0, 0].any()
    loss, valid = pixel_loss(probs, labels)
    torch.testing.assert_close(boxed.scores, box_mean(loss, valid, 3))
    with pytest.raises(Exception, match="odd"):
        get_strategy("detection", "small-loss").build({"window": "4"})


@pytest.mark.parametrize("scope", ["image", "batch"])
def test_entropy_flags_alpha_share(scope):
    probs, labels = _probs(B=3, H=20, W=30, seed=5), _labels(B=3, H=20, W=30, seed=6)
    det = get_strategy("detection", "entropy").build({"alpha": "0.25", "scope": scope})
    result = det.detect(probs, labels)
    valid = labels != 255
    entropy = -(probs * probs.log()).sum(1)
    torch.testing.assert_close(result.scores, entropy, rtol=1e-4, atol=1e-5)
    groups = [(slice(i, i + 1)) for i in range(3)] if scope == "image" else [slice(None)]
    for g in groups:
        share = result.flags[g][valid[g]].float().mean()
        n = int(valid[g].sum())
        assert abs(float(share) - 0.25) <= 1.0 / n + 1e-6
        flagged, kept = result.scores[g][result.flags[g]], result.scores[g][valid[g] & ~result.flags[g]]
        assert flagged.min() >= kept.max()


def test_confident_thresholds_and_flags():
    # Two classes. Class 0 pixels: p0 = 0.9 (4 px) -> t0 = 0.9; class 1 labelled pixels: p1 in {0.8, 0.2}.
    p0 = torch.tensor([0.9, 0.9, 0.9, 0.9, 0.2, 0.8, 0.5])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 255]).view(1, 1, 7)
    probs = torch.stack([p0, 1 - p0]).view(1, 2, 1, 7)
    det = get_strategy("detection", "confident").build({"rule": "joint"})
    fitted = det.fit(DetectionContext(2, batches=lambda: iter([Batch(["x"], probs, labels)]),
                                      calibration_batches=lambda s: iter(())))
    assert fitted["class_thresholds"] == pytest.approx([0.9, 0.5], abs=1e-3)  # t1 = mean(0.8, 0.2), float16 precision
    result = det.detect(probs, labels)
    # pixel 5 is labelled 1 but p0 = 0.8 < t0 and p1 = 0.2 < t1: no confident class, kept.
    # pixel 4 is labelled 1 with p1 = 0.8 >= t1: kept. Nothing labelled 0 falls below t0 with p1 >= t1.
    assert result.flags.tolist() == [[[False] * 7]]
    labels2 = torch.tensor([1, 0, 0, 0, 1, 1, 255]).view(1, 1, 7)
    result2 = det.detect(probs, labels2)
    assert result2.flags[0, 0].tolist() == [True, False, False, False, False, False, False]
    torch.testing.assert_close(result2.scores[0, 0, 0], torch.tensor(1 - 0.1))


def _rank_rule_reference(probs, labels):
    """cleanlab's segmentation rule by brute force (a full sort), ignore pixels left out; ties at
    the cut are flagged together."""
    C = probs.shape[1]
    P = probs.permute(0, 2, 3, 1).reshape(-1, C).double()
    y = labels.reshape(-1)
    valid = y != 255
    P, yv = P[valid], y[valid]
    t = torch.stack([P[yv == c, c].mean() for c in range(C)])
    pred = P.argmax(1)
    p_pred = P.gather(1, pred[:, None])[:, 0]
    issues = int(((pred != yv) & (p_pred >= t[pred] - 1e-6)).sum())
    self_conf = P.gather(1, yv[:, None])[:, 0]
    flags = torch.zeros_like(y, dtype=torch.bool)
    if issues:
        cut = torch.sort(self_conf).values[issues - 1]
        flags[valid] = (self_conf <= cut) & (pred != yv)
    return flags.view(labels.shape), issues


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_rank_rule_matches_full_sort(seed):
    probs = _probs(B=3, C=5, H=24, W=31, seed=seed).half().float()  # float16 values, as on disk
    labels = _labels(B=3, H=24, W=31, C=5, seed=seed + 10)
    det = get_strategy("detection", "confident").build({})  # rule=rank is the default
    batches = [Batch(["a"], probs[:1], labels[:1]), Batch(["b", "c"], probs[1:], labels[1:])]
    fitted = det.fit(DetectionContext(5, batches=lambda: iter(batches), calibration_batches=lambda s: iter(())))
    want, issues = _rank_rule_reference(probs, labels)
    assert fitted["estimated_issues"] == issues > 0
    got = torch.cat([det.detect(b.probs, b.labels).flags for b in batches])
    assert torch.equal(got, want)
    half = det.detect(probs.half(), labels)  # what predict writes: same flags, float32 scores
    assert torch.equal(half.flags, want) and half.scores.dtype == torch.float32


def test_confident_rank_rule_agrees_with_cleanlab():
    filt = pytest.importorskip("cleanlab.segmentation.filter")
    probs = _probs(B=2, C=4, H=30, W=40, seed=7).half().float()
    labels = torch.where(torch.rand(2, 30, 40, generator=torch.Generator().manual_seed(8)) < 0.7,
                         probs.argmax(1), torch.randint(0, 4, (2, 30, 40), generator=torch.Generator().manual_seed(9)))
    det = get_strategy("detection", "confident").build({})
    det.fit(DetectionContext(4, batches=lambda: iter([Batch(["a", "b"], probs, labels)]),
                             calibration_batches=lambda s: iter(())))
    ours = det.detect(probs, labels).flags.numpy()
    theirs = filt.find_label_issues(labels.numpy(), probs.double().numpy(), n_jobs=1, verbose=False)
    # cleanlab breaks ties at the cut by position, we flag the whole tie: only such pixels differ.
    differ = ours != theirs
    assert differ.sum() <= 0.01 * theirs.sum()
    assert (ours[differ]).all()


def test_label_probability_goes_through_label_confidence(monkeypatch):
    import noisyseg.strategies.detection.base as base
    from noisyseg.ops.label_confidence import label_confidence

    probs, labels = _probs(), _labels()
    calls = []
    monkeypatch.setattr(base, "label_confidence", lambda p, l: calls.append(1) or label_confidence(p, l))
    p, valid = base.label_probability(probs.half(), labels.int())
    assert calls and p.dtype == torch.float32 and torch.equal(valid, labels != 255)
    gathered = probs.half().gather(1, labels.where(valid, 0)[:, None]).squeeze(1).float()
    assert torch.equal(p[valid], gathered[valid]) and not p[~valid].any()


def test_example_plugin_margin_uses_label_confidence():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "noisyseg-example"))
    try:
        from noisyseg_example import MarginDetector
    finally:
        sys.path.pop(0)
    probs, labels = _probs(), _labels()
    result = MarginDetector(0.3).detect(probs, labels)
    valid = labels != 255
    gap = probs.amax(1) - probs.gather(1, labels.where(valid, 0)[:, None]).squeeze(1)
    torch.testing.assert_close(result.scores[valid], gap[valid], rtol=0, atol=0)
    assert not result.scores[~valid].any()
    assert torch.equal(result.flags, valid & (gap > 0.3))


def _calibration_images(rng, n, pixels=400):
    """Images whose noise rate varies from image to image (as real ones do): per pixel a loss, and
    whether the noisy label is right, likelier at low loss."""
    out = []
    for _ in range(n):
        rate = rng.uniform(0.0, 0.6)
        loss = np.round(rng.exponential(1.0, pixels), 3)
        out.append((loss, rng.random(pixels) > rate * (1 - np.exp(-loss))))
    return out


def _histogram(images, per_image):
    hist = LossHistogram(per_image=per_image)
    losses = torch.tensor(np.stack([l for l, _ in images])).float()
    hist.update(losses, torch.tensor(np.stack([c for _, c in images])))
    return hist


def _precision(images, theta):
    kept = np.concatenate([c[l.astype(np.float16) <= theta] for l, c in images])
    return kept.mean() if kept.size else 1.0


def test_calibrate_theta_with_confidence_holds_the_target_on_new_images():
    """θ from the point estimate meets the target on new images of the same source about half the
    time; the bootstrap bound at confidence 0.9 most of the time, and keeps fewer pixels."""
    rng = np.random.default_rng(0)
    met = {0.0: 0, 0.9: 0}
    for _ in range(40):
        calib, new = _calibration_images(rng, 30), _calibration_images(rng, 30)
        hist = _histogram(calib, per_image=True)
        point, _ = calibrate_theta(hist, 0.9)
        bound, _ = calibrate_theta(hist, 0.9, confidence=0.9)
        assert bound <= point and _precision(calib, bound) >= 0.9
        met[0.0] += _precision(new, point) >= 0.9
        met[0.9] += _precision(new, bound) >= 0.9
    assert met[0.0] <= 28 and met[0.9] >= 30 and met[0.9] - met[0.0] >= 6, met
    # the per-image buckets add up to the pooled histogram; a pooled one cannot give a bound
    assert torch.equal(torch.stack(hist.images).sum(0)[0], hist.correct.view(-1, 16).sum(-1))
    with pytest.raises(ValueError, match="per_image"):
        calibrate_theta(_histogram(calib, per_image=False), 0.9, confidence=0.9)


def test_small_loss_confidence_reported_and_stricter():
    probs, labels = _probs(B=6, H=16, W=16, seed=7), _labels(B=6, H=16, W=16, seed=8)
    gt = torch.where(torch.rand(labels.shape, generator=torch.Generator().manual_seed(9)) < 0.85, labels, 0)
    ctx = DetectionContext(4, batches=lambda: iter(()),
                           calibration_batches=lambda split: iter([Batch(list("abcdef"), probs, labels, gt)]))
    fitted = {c: get_strategy("detection", "small-loss").build(
        {"theta": "auto", "calibrate_split": "val", "target_precision": "0.9", "confidence": c}).fit(ctx)
        for c in ("0", "0.9")}
    assert fitted["0.9"]["confidence"] == 0.9 and fitted["0.9"]["theta"] <= fitted["0"]["theta"]
    chosen = next(c for c in fitted["0.9"]["curve"] if c["theta"] == fitted["0.9"]["theta"])
    assert 0.9 <= chosen["precision_bound"] <= chosen["precision"] and "precision_bound" not in fitted["0"]["curve"][0]
