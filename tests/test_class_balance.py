"""Median-frequency class balancing: counts, weights, and their use in ``noisyseg train``."""

import json

import numpy as np
import pytest

from noisyseg.errors import NoisySegError
from noisyseg.io import Dataset
from noisyseg.losses.class_balance import class_pixel_counts, median_frequency_weights
from noisyseg.train.supervised import TrainConfig, train

TINY = {"width": "8", "depth": "1,1,1,1", "feature_dim": "16"}


def test_counts_and_weights_on_hand_made_masks():
    a = np.array([[0, 0, 0], [0, 1, 255]], np.uint8)   # 5 labelled pixels: 4 x class 0, 1 x class 1
    b = np.array([[0, 0, 2], [2, 2, 2]], np.uint8)     # 6 labelled pixels: 2 x class 0, 4 x class 2
    counts, image_pixels = class_pixel_counts([a, b], 4)
    assert counts.tolist() == [6, 1, 4, 0]
    assert image_pixels.tolist() == [11, 5, 6, 0]     # class 0 is in both images, 255 not counted
    w = median_frequency_weights(counts, image_pixels).numpy()
    freq = np.array([6 / 11, 1 / 5, 4 / 6])
    np.testing.assert_allclose(w[:3], np.median(freq) / freq, rtol=1e-6)
    assert w[3] == 1.0                                 # absent class
    assert w[1] == w[:3].max() and w[2] == w[:3].min()  # lowest frequency weighs most, highest least
    assert median_frequency_weights(np.zeros(3), np.zeros(3)).tolist() == [1.0, 1.0, 1.0]


def _cfg(shapes, out, **kw):
    return TrainConfig(dataset=str(shapes), split="strong", out=str(out), model="deeplabv3plus", model_params=TINY, epochs=2,
                       batch_size=4, crop_size=32, device="cpu", **kw)


def test_train_with_median_balancing(shapes, tmp_path):
    ds = Dataset(shapes)
    plain = train(_cfg(shapes, tmp_path / "plain", class_balance="none"))
    balanced = train(_cfg(shapes, tmp_path / "balanced", class_balance="median"))
    assert plain["class_weights"] is None
    counts, image_pixels = class_pixel_counts([ds.load_mask(i) for i in ds.ids("strong")], ds.num_classes)
    expected = median_frequency_weights(counts, image_pixels).tolist()
    assert list(balanced["class_weights"]) == ds.classes
    np.testing.assert_allclose(list(balanced["class_weights"].values()), expected, rtol=1e-6)
    assert len(set(np.round(expected, 3))) > 1      # the tiny dataset is unbalanced, so the loss changes
    assert not np.allclose(balanced["loss_per_epoch"], plain["loss_per_epoch"])
    config = json.loads((tmp_path / "balanced" / "config.json").read_text())
    assert config["class_balance"] == "median"
    with pytest.raises(NoisySegError, match="class_balance"):
        train(_cfg(shapes, tmp_path / "bad", class_balance="inverse"))


def test_old_run_without_class_balance_resumes(shapes, tmp_path):
    train(_cfg(shapes, tmp_path / "run", class_balance="none"))  # what runs written before the option did
    path = tmp_path / "run" / "config.json"
    config = json.loads(path.read_text())
    del config["class_balance"]                      # a run written before the option existed
    path.write_text(json.dumps(config))
    assert train(_cfg(shapes, tmp_path / "run", class_balance="none"))["resumed_from_epoch"] == 2


def test_train_cli_class_balance(cli, shapes, tmp_path):
    from conftest import assert_one_line_error

    result = cli("train", shapes, "--split", "strong", "--out", tmp_path / "r", "--class-balance", "inverse")
    assert_one_line_error(result, "--class-balance", "found 'inverse'")
    assert not (tmp_path / "r").exists()
    result = cli("train", shapes, "--split", "strong", "--out", tmp_path / "ok", "--epochs", "1", "--batch-size", "4",
                 "--crop-size", "32", "--device", "cpu", "--class-balance", "median",
                 "--model", "deeplabv3plus", *[a for k, v in TINY.items() for a in ("-p", f"{k}={v}")])
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["config"]["class_balance"] == "median" and len(report["class_weights"]) == 5
