"""Test-time augmentation in predict (``--flip``, ``--scales``): closed forms on stub models."""

import pytest
import torch

from noisyseg.pipeline.predict import _forward

CONFIG = {"input_scale": 1.0, "normalisation": "tf"}


class Pointwise(torch.nn.Module):
    """logits = the normalised image's channels (+ a fixed left-to-right ramp when ``ramp``)."""

    def __init__(self, ramp: bool = False):
        super().__init__()
        self.ramp = ramp

    def forward(self, x):
        logits = x * 3
        if self.ramp:
            logits = logits + torch.linspace(0, 2, x.shape[-1]) * torch.tensor([1.0, 0.0, -1.0])[:, None, None]
        return {"logits": logits, "features": x[:, :2]}


def images(seed=0, size=(2, 3, 8, 12)):
    return torch.rand(size, generator=torch.Generator().manual_seed(seed))


def test_flip_of_a_mirror_symmetric_model_changes_nothing():
    x = images()
    plain = _forward(Pointwise(), CONFIG, x, ["a", "b"], None, False)
    flipped = _forward(Pointwise(), CONFIG, x, ["a", "b"], None, False, flip=True)
    torch.testing.assert_close(flipped["probs"], plain["probs"])
    torch.testing.assert_close(flipped["logits"], plain["probs"].log())
    assert torch.equal(flipped["features"], plain["features"])


def test_flip_averages_the_image_and_its_mirror_mirrored_back():
    x = images(1)
    model = Pointwise(ramp=True)
    out = _forward(model, CONFIG, x, ["a", "b"], None, False, flip=True)
    direct = torch.softmax(model(x * 2 - 1)["logits"], 1)
    mirror = torch.softmax(model((x * 2 - 1).flip(-1))["logits"], 1).flip(-1)
    torch.testing.assert_close(out["probs"], (direct + mirror) / 2)
    assert not torch.allclose(out["probs"], direct)  # the ramp is not mirror-symmetric


def test_scales_average_probs_at_image_size_and_keep_scale_one_features():
    x = torch.full((1, 3, 8, 12), 0.25)
    x[:, 1] = 0.75  # a constant image survives any rescaling exactly
    out = _forward(Pointwise(), CONFIG, x, ["a"], None, False, scales=(0.5, 1.0, 2.0))
    plain = _forward(Pointwise(), CONFIG, x, ["a"], None, False)
    assert out["probs"].shape == (1, 3, 8, 12)
    torch.testing.assert_close(out["probs"], plain["probs"])
    assert out["features"].shape[-2:] == (8, 12)  # scale 1's grid, though 0.5 came first


def test_predict_rejects_bad_scales_in_one_line(cli, tmp_path):
    result = cli("predict", tmp_path, tmp_path, "--split", "x", "--out", tmp_path / "o", "--scales", "1,zero")
    assert result.code == 2
    assert "--scales" in result.err and "'1,zero'" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def tiny_run(shapes, tmp_path_factory):
    from noisyseg.train.supervised import TrainConfig, train

    out = tmp_path_factory.mktemp("tta") / "run"
    train(TrainConfig(dataset=str(shapes), split="strong", out=str(out), model="deeplabv3plus",
                      model_params={"width": "8", "depth": "1,1,1,1", "feature_dim": "16"}, epochs=1,
                      batch_size=4, crop_size=32, device="cpu"))
    return out


def test_tta_on_a_trained_run_writes_probs_and_records_itself(tiny_run, shapes, tmp_path):
    import numpy as np

    from noisyseg.io import ProbsDir
    from noisyseg.pipeline.predict import predict

    plain = predict(tiny_run, shapes, "weak", tmp_path / "plain")
    tta = predict(tiny_run, shapes, "weak", tmp_path / "tta", flip=True, scales=(0.75, 1.0))
    assert "flip" not in plain and "scales" not in plain
    assert tta["flip"] is True and tta["scales"] == [0.75, 1.0] and tta["images"] == plain["images"] == 8
    image_id = sorted(p.stem for p in (tmp_path / "tta" / "probs").iterdir())[0]
    a = ProbsDir(tmp_path / "plain" / "probs").read(image_id, 5)
    b = ProbsDir(tmp_path / "tta" / "probs").read(image_id, 5)
    assert a.shape == b.shape and not np.allclose(a, b)
    np.testing.assert_allclose(b.astype(np.float32).sum(0), 1.0, atol=2e-3)
