"""detect --spare-blind: classes the model cannot judge keep their noisy pixels."""

import json

import numpy as np
import torch

from noisyseg.io import Dataset, LabelDir, ProbsDir
from noisyseg.pipeline.detect import class_agreement
from noisyseg.strategies.detection.base import Batch


def test_class_agreement_counts_argmax_hits_per_noisy_class():
    probs = torch.zeros(1, 3, 1, 4)
    probs[0, :, 0, 0] = torch.tensor([0.8, 0.1, 0.1])  # label 0, argmax 0
    probs[0, :, 0, 1] = torch.tensor([0.1, 0.8, 0.1])  # label 0, argmax 1
    probs[0, :, 0, 2] = torch.tensor([0.1, 0.8, 0.1])  # label 1, argmax 1
    probs[0, :, 0, 3] = torch.tensor([0.1, 0.8, 0.1])  # ignored
    labels = torch.tensor([[[0, 0, 1, 255]]])
    got = class_agreement(iter([Batch(["a"], probs, labels), Batch(["b"], probs, labels)]), 3)
    assert got[:2].tolist() == [0.5, 1.0] and torch.isnan(got[2])


def test_spare_blind_keeps_the_pixels_of_a_class_the_model_never_predicts(cli, shapes_chain, tmp_path):
    c = shapes_chain
    ds = Dataset(c["data"])
    noisy = LabelDir(c["noisy"])
    counts = sum(np.bincount(noisy.read(i, 5, (48, 48)).ravel(), minlength=256)[:5] for i in ds.ids("weak"))
    k = int(np.argmax(counts[1:])) + 1  # the most frequent object class of the noisy labels
    blind = tmp_path / "probs"  # the chain's probs with class k never the argmax
    src, dst = ProbsDir(c["probs"]), ProbsDir(blind)
    for image_id in ds.ids("weak"):
        p = src.read(image_id, 5, (48, 48)).astype(np.float32)
        p[k] = 0
        dst.write(image_id, p / p.sum(0))
    base = ["detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", blind,
            "--strategy", "small-loss", "-p", "theta=0.5", "--json"]
    plain = json.loads(cli(*base, "--out", tmp_path / "plain").out)
    spared = json.loads(cli(*base, "--out", tmp_path / "spared", "--spare-blind", "0.05").out)
    info = spared["fitted"]["spare_blind"]
    assert info["spared_classes"] == [ds.classes[k]], info
    assert info["class_agreement"][ds.classes[k]] == 0.0 and info["class_agreement"][ds.classes[0]] > 0.5
    assert spared["flagged_share"] < plain["flagged_share"]
    a, b = LabelDir(tmp_path / "plain"), LabelDir(tmp_path / "spared")
    flagged_k = 0
    for image_id in ds.ids("weak"):
        n, without, with_ = (d.read(image_id, 5, (48, 48)) for d in (noisy, a, b))
        flagged_k += int(((n == k) & (without == 255)).sum())
        np.testing.assert_array_equal(with_[n == k], k)  # class k never flagged
        np.testing.assert_array_equal(with_[n != k], without[n != k])  # the others as without the option
    assert flagged_k > 0  # the option had something to spare


def test_spare_blind_out_of_range(cli, shapes_chain, tmp_path):
    c = shapes_chain
    result = cli("detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                 "--strategy", "small-loss", "--spare-blind", "1.5", "--out", tmp_path / "o")
    assert result.code == 2 and "--spare-blind" in result.err and not (tmp_path / "o").exists()
