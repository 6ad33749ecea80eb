"""CLI: pseudo-label, weight, predict --cams/--logits, and urn/entropy through detect."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error

from noisyseg.io import Dataset, LabelDir, ProbsDir, WeightsDir


@pytest.fixture(scope="module")
def cams_dir(shapes_chain, tmp_path_factory):
    """Stride-4 CAM-like maps: the GT one-hot, blurred by subsampling, zero for absent classes."""
    ds = Dataset(shapes_chain["data"])
    root = tmp_path_factory.mktemp("cams")
    for image_id in ds.ids():
        gt = ds.load_mask(image_id)
        onehot = np.stack([(gt == c).astype(np.float32) for c in range(ds.num_classes)])
        small = onehot.reshape(ds.num_classes, 12, 4, 12, 4).mean((2, 4))
        np.save(root / f"{image_id}.npy", small.astype(np.float16))
    return root


def _kept_exact(n_pixels, alpha):
    return math.floor((1 - alpha) * (n_pixels - 1)) + 1


class TestPseudoLabelCli:
    def test_entropy_filter(self, cli, shapes_chain, tmp_path):
        out = tmp_path / "pl"
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "entropy-filter", "-p", "alpha=0.25", "--out", out, "--json")
        assert r.code == 0, r
        report = json.loads(r.out)
        n = 8 * 48 * 48  # one batch of 8 images
        assert report["kept_share"] == pytest.approx(_kept_exact(n, 0.25) / n)
        assert 0 <= report["ece"] <= 1 and 0 < report["label_quality"]["miou"] <= 1
        ds = Dataset(shapes_chain["data"])
        image_id = ds.ids("weak")[0]
        lab = LabelDir(out).read(image_id, ds.num_classes)
        probs = ProbsDir(shapes_chain["probs"]).read(image_id, ds.num_classes)
        kept = lab != 255
        assert np.array_equal(lab[kept], probs.argmax(0)[kept])
        # Rerun resumes; other parameters need --force.
        assert cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                   "--strategy", "entropy-filter", "-p", "alpha=0.25", "--out", out).code == 0
        again = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                    "--strategy", "entropy-filter", "-p", "alpha=0.5", "--out", out)
        assert_one_line_error(again, str(out), "--force")

    def test_calibrated_fusion_soft(self, cli, shapes_chain, cams_dir, tmp_path):
        out = tmp_path / "fused"
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--cams", cams_dir, "--strategy", "calibrated-fusion", "--soft", "--out", out, "--json")
        assert r.code == 0, r
        report = json.loads(r.out)
        assert report["kept_share"] == 1.0 and 0 <= report["ece"] <= 1
        ds = Dataset(shapes_chain["data"])
        for image_id in ds.ids("weak")[:3]:
            soft = np.load(out / f"{image_id}.npy")
            assert soft.dtype == np.float16 and soft.shape == (5, 48, 48)
            assert np.allclose(soft.astype(np.float32).sum(0), 1, atol=5e-3)
            top2 = np.sort(soft.astype(np.float32), 0)[-2:]
            clear = top2[1] - top2[0] > 1e-2  # float16 storage can tie close seconds
            lab = LabelDir(out).read(image_id, 5)
            assert np.array_equal(lab[clear], soft.astype(np.float32).argmax(0)[clear])

    def test_cam_threshold_tags_from_cams(self, cli, shapes_chain, cams_dir, tmp_path):
        out = tmp_path / "camthr"
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--cams", cams_dir, "--strategy", "cam-threshold", "-p", "fg=0.5", "-p", "bg=0.05", "--out", out, "--json")
        assert r.code == 0, r
        q = json.loads(r.out)["label_quality"]
        # CAMs made from the GT: what is labelled is nearly always right.
        assert q["precision"] > 0.95 and 0.3 < q["coverage"] < 1.0

    def test_bad_inputs(self, cli, shapes_chain, cams_dir, tmp_path):
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "calibrated-fusion", "--out", tmp_path / "a")
        assert_one_line_error(r, "calibrated-fusion", "--cams")
        bad = tmp_path / "badcams"
        bad.mkdir()
        for p in cams_dir.iterdir():
            np.save(bad / p.name, np.zeros((3, 12, 12), np.float16))
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--cams", bad, "--strategy", "calibrated-fusion", "--out", tmp_path / "b")
        assert_one_line_error(r, str(bad), "CAMs of shape (5, h, w)", "(3, 12, 12)")
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "argmax", "--soft", "-p", "min_confidence=2", "--out", tmp_path / "c")
        assert_one_line_error(r, "min_confidence", "found 2")
        r = cli("pseudo-label", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "cam-threshold", "--cams", cams_dir, "--soft", "--out", tmp_path / "d")
        assert_one_line_error(r, "--soft", "hard labels only")


class TestWeightCli:
    def test_urn_hard_weights(self, cli, shapes_chain, tmp_path):
        out = tmp_path / "w"
        r = cli("weight", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"], "--labels",
                shapes_chain["noisy"], "--strategy", "urn", "-p", "workers=1", "-p", "iterations=2", "--float",
                "--out", out, "--json")
        assert r.code == 0, r
        report = json.loads(r.out)
        assert "as_noise_detector" in report and report["pixels_above_one"] == 0
        ds = Dataset(shapes_chain["data"])
        for image_id in ds.ids("weak"):
            w = np.load(out / f"{image_id}.npy").astype(np.float64)
            assert np.all(np.isclose(w, 0.05, atol=1e-4) | (w == 1.0))
            png = WeightsDir(out).read(image_id)  # the .npy wins; the PNG holds round(w x 255)
            assert np.array_equal(png, w.astype(np.float32))
            from PIL import Image
            assert set(np.unique(np.asarray(Image.open(out / f"{image_id}.png"))).tolist()) <= {13, 255}
        assert 0.05 <= report["mean_weight"] <= 1.0

    def test_adaptive_float_keeps_lambda(self, cli, shapes_chain, tmp_path):
        out = tmp_path / "lam"
        r = cli("weight", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "adaptive", "-p", "alpha=0.5", "--float", "--out", out, "--json")
        assert r.code == 0, r
        report = json.loads(r.out)
        n = 8 * 48 * 48
        lam = n / _kept_exact(n, 0.5)
        assert report["max_weight"] == pytest.approx(lam, rel=1e-3)
        assert report["mean_weight"] == pytest.approx(1.0, rel=1e-3)
        assert report["pixels_above_one"] == _kept_exact(n, 0.5)

    def test_bad_inputs(self, cli, shapes_chain, tmp_path):
        bad = tmp_path / "badprobs"
        bad.mkdir()
        ds = Dataset(shapes_chain["data"])
        for image_id in ds.ids("weak"):
            np.save(bad / f"{image_id}.npy", np.full((5, 48, 48), 0.5, np.float16))
        r = cli("weight", shapes_chain["data"], "--split", "weak", "--probs", bad, "--strategy", "confidence",
                "--out", tmp_path / "x")
        assert_one_line_error(r, str(bad), "summing to 1")
        r = cli("weight", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "urn", "-p", "scales=1", "--out", tmp_path / "y")
        assert_one_line_error(r, "scales", "at least 2")
        r = cli("weight", shapes_chain["data"], "--split", "weak", "--probs", shapes_chain["probs"],
                "--strategy", "confidence", "-p", "of_label=true", "--out", tmp_path / "z")
        assert_one_line_error(r, "--labels")


class TestDetectCli:
    @pytest.mark.parametrize("strategy,params", [("urn", ["-p", "workers=1", "-p", "iterations=2"]),
                                                 ("entropy", ["-p", "alpha=0.3"])])
    def test_urn_and_entropy_detect(self, cli, shapes_chain, tmp_path, strategy, params):
        r = cli("detect", shapes_chain["data"], "--split", "weak", "--labels", shapes_chain["noisy"], "--probs",
                shapes_chain["probs"], "--strategy", strategy, *params, "--out", tmp_path / strategy, "--json")
        assert r.code == 0, r
        report = json.loads(r.out)
        assert 0 < report["flagged_share"] < 1
        assert 0 <= report["detection_quality"]["auroc"] <= 1


class TestPredictCams:
    def test_cams_and_logits(self, cli, shapes_chain, tmp_path):
        from noisyseg.models import DeepLabV3Plus

        run = tmp_path / "run"
        run.mkdir()
        params = {"width": 4, "depth": "1,1,1,1", "feature_dim": 8}
        torch.manual_seed(0)
        model = DeepLabV3Plus(5, width=4, depth=(1, 1, 1, 1), feature_dim=8)
        torch.save({"model": model.state_dict()}, run / "model.pt")
        (run / "config.json").write_text(json.dumps({"model": "deeplabv3plus", "num_classes": 5, "model_params": params}))
        out = tmp_path / "preds"
        r = cli("predict", run, shapes_chain["data"], "--split", "weak", "--out", out, "--cams", "--logits",
                "--device", "cpu")
        assert r.code == 0, r
        ds = Dataset(shapes_chain["data"])
        for image_id in ds.ids("weak"):
            cams = np.load(out / "cams" / f"{image_id}.npy")
            logits = np.load(out / "logits" / f"{image_id}.npy")
            probs = np.load(out / "probs" / f"{image_id}.npy").astype(np.float32)
            assert cams.dtype == np.float16 and cams.shape == (5, 3, 3) and np.isfinite(cams).all()
            assert cams.min() >= 0 and cams.max() <= 1
            peaks = cams.reshape(5, -1).max(1)
            assert np.all((peaks == 0) | np.isclose(peaks, 1, atol=1e-3))
            assert logits.shape == (5, 48, 48)
            sm = np.exp(logits.astype(np.float32) - logits.max(0))
            assert np.allclose(sm / sm.sum(0), probs, atol=2e-2)
        # Absent-class zeroing follows the classifier when there is no tags.json.
        model.eval()
        from noisyseg.train.data import normalise
        image_id = ds.ids("weak")[0]
        with torch.no_grad():
            res = model(normalise(ds.load_image(image_id))[None])
        absent = (torch.sigmoid(res["class_logits"][0]) <= 0.5).numpy()
        cams = np.load(out / "cams" / f"{image_id}.npy")
        assert np.all(cams[absent] == 0)
