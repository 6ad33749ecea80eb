"""First model, training (resumable, weighted), prediction outputs and the demo chain."""

import json

import numpy as np
import pytest
import torch

from noisyseg.io import Dataset, FeaturesDir, ProbsDir, WeightsDir
from noisyseg.losses import weighted_cross_entropy
from noisyseg.models import DeepLabV3Plus
from noisyseg.pipeline.predict import predict
from noisyseg.train.checkpoint import load_checkpoint, load_run
from noisyseg.train.supervised import TrainConfig, train

TINY = {"width": "8", "depth": "1,1,1,1", "feature_dim": "16"}


@pytest.mark.parametrize("size", [(64, 64), (50, 75)])
def test_model_shapes(size):
    model = DeepLabV3Plus(7, width=8, depth=(1, 1, 1, 1), feature_dim=24).eval()
    out = model(torch.randn(2, 3, *size))
    assert out["logits"].shape == (2, 7, *size)
    assert out["features"].shape == (2, 24, -(-size[0] // 4), -(-size[1] // 4))
    assert out["class_logits"].shape == (2, 7)


def test_weighted_cross_entropy():
    logits = torch.randn(2, 3, 4, 5, requires_grad=True)
    labels = torch.randint(0, 3, (2, 4, 5))
    labels[0, 0] = 255
    plain = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255)
    torch.testing.assert_close(weighted_cross_entropy(logits, labels), plain)
    half = weighted_cross_entropy(logits, labels, torch.full((2, 4, 5), 0.5))
    torch.testing.assert_close(half, plain / 2)
    everything = weighted_cross_entropy(logits, labels, denominator="all")
    torch.testing.assert_close(everything, plain * (labels != 255).sum() / labels.numel())


def _cfg(shapes, out, **kw):
    return TrainConfig(dataset=str(shapes), split="strong", out=str(out), model="deeplabv3plus", model_params=TINY, epochs=3,
                       batch_size=4, crop_size=32, device="cpu", **kw)


def test_train_resumes_exactly_after_interruption(shapes, tmp_path):
    full = train(_cfg(shapes, tmp_path / "full"))
    assert len(full["loss_per_epoch"]) == 3 and full["resumed_from_epoch"] == 0

    def stop_in_epoch_two(epoch, step, steps, loss):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(shapes, tmp_path / "cut"), on_step=stop_in_epoch_two)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed = train(_cfg(shapes, tmp_path / "cut"))
    assert resumed["resumed_from_epoch"] == 1
    np.testing.assert_allclose(resumed["loss_per_epoch"], full["loss_per_epoch"], rtol=1e-5)
    a = load_checkpoint(tmp_path / "full" / "model.pt")["model"]
    b = load_checkpoint(tmp_path / "cut" / "model.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["model_params"] == {"width": 8, "depth": "1,1,1,1", "feature_dim": 16}


def test_train_with_weights_and_predict(shapes, tmp_path):
    ds = Dataset(shapes)
    weights = WeightsDir(tmp_path / "w")
    for image_id in ds.ids("strong"):
        weights.write(image_id, np.full((48, 48), 0.5, np.float32))
    train(_cfg(shapes, tmp_path / "run", weights=str(tmp_path / "w")))
    model, config = load_run(tmp_path / "run")
    assert config["weights"] and not model.training
    report = predict(tmp_path / "run", shapes, "weak", tmp_path / "preds", features=True, device="cpu")
    assert report["images"] == 8 and report["feature_dim"] == 16 and report["feature_stride"] == 4
    probs = ProbsDir(tmp_path / "preds" / "probs").read("weak_0000", 5, (48, 48))
    assert probs.dtype == np.float16
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1, atol=1e-2)
    feats = FeaturesDir(tmp_path / "preds" / "features").read("weak_0000", 16)
    assert feats.shape == (16, 12, 12) and feats.dtype == np.float16
    again = predict(tmp_path / "run", shapes, "weak", tmp_path / "preds", features=True, device="cpu")
    assert again["skipped"] == 8


def test_train_cli_errors(cli, shapes, tmp_path):
    from conftest import assert_one_line_error

    base = ["train", shapes, "--split", "strong", "--out", tmp_path / "r", "--epochs", "1", "--device", "cpu"]
    assert_one_line_error(cli(*base, "--model", "deeplabv3plus", "-p", "width=2"), "width", "found 2")
    assert_one_line_error(cli(*base, "--model", "unet"), "unknown model 'unet' (known: ", "deeplabv3plus")
    assert_one_line_error(cli(*base, "--labels", tmp_path / "none"), "none", "no such directory")
    assert_one_line_error(cli("predict", tmp_path / "nothing", shapes, "--split", "weak", "--out", tmp_path / "p"),
                          "config.json")


def test_demo_tells_the_whole_story(tmp_path):
    """Each stage adds value on the demo data: detection makes the weak labels more precise,
    correction fills them back to full coverage with a higher mIoU, and the final model beats both
    the clean model alone and the model trained on the noisy labels on the test split."""
    from noisyseg.pipeline.demo import demo

    s = demo(tmp_path / "demo", device="cpu")["story"]
    noisy, detected, corrected = s["noisy labels"], s["detected"], s["corrected"]
    assert noisy["coverage"] == 1.0 and 0.5 < detected["coverage"] < 1.0
    assert detected["precision"] > noisy["precision"] + 0.05
    assert corrected["coverage"] == 1.0 and corrected["miou"] > detected["miou"] > noisy["miou"]
    final = s["final model (test)"]["miou"]
    assert final > s["clean model (test)"]["miou"] + 0.01
    assert final > s["noisy-label model (test)"]["miou"] + 0.05
    assert (tmp_path / "demo" / "report" / "index.html").is_file()


def test_input_scale_and_jitter(shapes, tmp_path):
    from noisyseg.train.data import SegmentationSamples, colour_jitter, normalise

    ds = Dataset(shapes)
    samples = SegmentationSamples(ds, ds.ids("strong"), crop_size=16, input_scale=0.5, jitter=0.4)
    image, label, _ = samples.load(ds.ids("strong")[0])
    assert image.shape == (24, 24, 3) and label.shape == (24, 24)
    assert set(np.unique(label)) <= set(np.unique(ds.load_mask(ds.ids("strong")[0])))  # nearest, no blends
    img, lab, wt, _ = samples[0]
    assert img.shape == (3, 16, 16) and lab.shape == (16, 16)

    grey = torch.full((3, 4, 4), 0.5)
    draws = iter([1.0, 0.5, 0.5, 0.5])  # brightness factor 1.4, the rest 1
    torch.testing.assert_close(colour_jitter(grey.clone(), 0.4, lambda: next(draws)), torch.full((3, 4, 4), 0.7))

    x = torch.rand(2, 3, 8, 8) * 0.3 + 0.5
    z = normalise(x, "image")
    torch.testing.assert_close(z.mean((-2, -1)), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std((-2, -1)), torch.ones(2, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(normalise(x * 0.5 + 0.1, "image"), z, atol=1e-4, rtol=0)  # exposure-invariant
    with pytest.raises(ValueError, match="mode"):
        normalise(x, "none")

    train(_cfg(shapes, tmp_path / "run", input_scale=0.5, jitter=0.3, normalisation="image"))
    predict(tmp_path / "run", shapes, "weak", tmp_path / "preds", features=True, device="cpu")
    probs = ProbsDir(tmp_path / "preds" / "probs").read("weak_0000", 5, (48, 48))  # at image size
    assert probs.shape == (5, 48, 48)
    feats = FeaturesDir(tmp_path / "preds" / "features").read("weak_0000", 16)
    assert feats.shape[1:] == (6, 6)  # the model's grid on the half-size input


def test_train_cli_scale_range_error(cli, shapes, tmp_path):
    from conftest import assert_one_line_error

    for bad in ("2,1", "1"):
        result = cli("train", shapes, "--split", "strong", "--out", tmp_path / "r", "--scale-range", bad)
        assert_one_line_error(result, "--scale-range", f"found '{bad}'")
    result = cli("train", shapes, "--split", "strong", "--out", tmp_path / "r", "--normalisation", "none")
    assert_one_line_error(result, "--normalisation", "found 'none'")
    assert not (tmp_path / "r").exists()


def test_folds_give_out_of_fold_predictions(cli, shapes, tmp_path):
    from conftest import assert_one_line_error
    from noisyseg.train.supervised import fold_block

    ds = Dataset(shapes)
    ids = ds.ids("strong")
    assert fold_block(ids, 2, 0) + fold_block(ids, 2, 1) == ids and len(fold_block(ids, 3, 2)) >= 2
    run = tmp_path / "folds"
    base = ["train", shapes, "--split", "strong", "--out", run, "--epochs", "2", "--batch-size", "4",
            "--crop-size", "32", "--device", "cpu", "--model", "deeplabv3plus", "-p", "width=8", "-p", "depth=1,1,1,1", "-p", "feature_dim=16"]
    result = cli(*base, "--folds", "2")
    assert result.code == 0, result
    index = json.loads((run / "folds.json").read_text())
    assert index["held_out"] == {"fold0": ids[:4], "fold1": ids[4:]}
    assert json.loads((run / "fold1" / "config.json").read_text())["fold"] == 1
    assert cli(*base, "--folds", "2").code == 0  # finished: resumes, trains nothing
    assert cli(*base, "--folds", "4").code == 2  # another fold set in the same place

    report = predict(run, shapes, "strong", tmp_path / "p", features=True, device="cpu", logits=True)
    assert report["models"] == 2 and report["out_of_fold"] == 8
    predict(run, shapes, "weak", tmp_path / "p", features=True, device="cpu", logits=True)
    m0, c0 = load_run(run / "fold0")
    m1, c1 = load_run(run / "fold1")
    from noisyseg.train.data import normalise

    def probs_of(model, image_id):
        with torch.no_grad():
            x = normalise(ds.load_image(image_id))[None]
            return torch.softmax(model(x)["logits"], 1)[0]

    probs = ProbsDir(tmp_path / "p" / "probs")
    held_by_1 = ids[5]
    np.testing.assert_allclose(probs.read(held_by_1, 5).astype(np.float32), probs_of(m1, held_by_1).numpy(), atol=2e-3)
    other = ds.ids("weak")[0]
    mean = (probs_of(m0, other) + probs_of(m1, other)) / 2
    np.testing.assert_allclose(probs.read(other, 5).astype(np.float32), mean.numpy(), atol=2e-3)
    logits = np.load(tmp_path / "p" / "logits" / f"{other}.npy").astype(np.float32)
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 0).numpy(), mean.numpy(), atol=5e-3)

    # --full adds a model on every image to the same fold set (the folds resume, nothing retrained);
    # images no fold held out then take its prediction alone, held-out ones still their fold's.
    before = (run / "fold0" / "checkpoint.pt").stat().st_mtime_ns
    assert cli(*base, "--folds", "2", "--full").code == 0
    assert (run / "fold0" / "checkpoint.pt").stat().st_mtime_ns == before
    assert json.loads((run / "folds.json").read_text())["full"] == "full"
    assert json.loads((run / "full" / "config.json").read_text())["folds"] == 1
    report = predict(run, shapes, "weak", tmp_path / "pf", device="cpu")
    predict(run, shapes, "strong", tmp_path / "pf", device="cpu")
    assert report["models"] == 3
    full, _ = load_run(run / "full")
    probs = ProbsDir(tmp_path / "pf" / "probs")
    np.testing.assert_allclose(probs.read(other, 5).astype(np.float32), probs_of(full, other).numpy(), atol=2e-3)
    np.testing.assert_allclose(probs.read(held_by_1, 5).astype(np.float32), probs_of(m1, held_by_1).numpy(), atol=2e-3)
    assert_one_line_error(cli(*base, "--full"), "--full", "--folds")


def test_interleaved_folds_hold_out_every_kth_image(cli, shapes, tmp_path):
    from conftest import assert_one_line_error
    from noisyseg.train.supervised import fold_block

    ids = Dataset(shapes).ids("strong")
    assert fold_block(ids, 3, 1, "interleaved") == ids[1::3]
    assert sorted(sum((fold_block(ids, 3, k, "interleaved") for k in range(3)), [])) == sorted(ids)
    run = tmp_path / "folds"
    base = ["train", shapes, "--split", "strong", "--out", run, "--epochs", "1", "--batch-size", "4", "--folds", "2",
            "--crop-size", "32", "--device", "cpu", "--model", "deeplabv3plus", "-p", "width=8", "-p", "depth=1,1,1,1",
            "-p", "feature_dim=16"]
    result = cli(*base, "--fold-order", "interleaved")
    assert result.code == 0, result
    index = json.loads((run / "folds.json").read_text())
    assert index["held_out"] == {"fold0": ids[0::2], "fold1": ids[1::2]} and index["fold_order"] == "interleaved"
    assert cli(*base).code == 2  # the contiguous fold set is another run: refused in the same place
    # ... but the model on every image is the same for both orders: its config says so
    assert cli(*base, "--fold-order", "interleaved", "--full").code == 0
    other = tmp_path / "contiguous"
    assert cli(*base, "--full", "--out", other).code == 0
    configs = [json.loads((d / "full" / "config.json").read_text()) for d in (run, other)]
    assert configs[0]["fold_order"] == "contiguous" and {**configs[0], "out": ""} == {**configs[1], "out": ""}
    assert json.loads((run / "fold0" / "config.json").read_text())["fold_order"] == "interleaved"
    assert_one_line_error(cli(*base, "--fold-order", "random", "--out", tmp_path / "x"), "--fold-order", "found 'random'")
    assert not (tmp_path / "x").exists()


def test_train_on_two_splits_with_their_own_labels(cli, shapes, shapes_chain, tmp_path):
    """Exact masks of one split and a label dir for the other, learnt together; folds hold out a
    block of each split, and predict gives every image of both its out-of-fold probabilities."""
    from noisyseg.io import LabelDir
    from noisyseg.train.data import SegmentationSamples
    from noisyseg.train.supervised import held_out_ids, per_image, split_ids

    ds = Dataset(shapes)
    noisy = shapes_chain["noisy"]
    per_split = split_ids(ds, "strong+weak")
    assert list(per_split) == ["strong", "weak"]
    sources = per_image({"strong": None, "weak": str(noisy)}, per_split)
    samples = SegmentationSamples(ds, ds.ids("strong") + ds.ids("weak"), labels=sources)
    weak_id, strong_id = ds.ids("weak")[0], ds.ids("strong")[0]
    np.testing.assert_array_equal(samples.load(weak_id)[1], LabelDir(noisy).read(weak_id, 5, (48, 48)))
    np.testing.assert_array_equal(samples.load(strong_id)[1], ds.load_mask(strong_id))
    assert not np.array_equal(samples.load(weak_id)[1], ds.load_mask(weak_id))  # the noisy labels, not the masks
    assert held_out_ids(per_split, 2, 1) == ds.ids("strong")[4:] + ds.ids("weak")[4:]

    run = tmp_path / "run"
    result = cli("train", shapes, "--split", "strong", "--split", "weak", "--labels", f"weak={noisy}",
                 "--out", run, "--epochs", "1", "--folds", "2", "--crop-size", "32", "--model", "deeplabv3plus", "-p", "width=8",
                 "-p", "depth=1,1,1,1", "-p", "feature_dim=16", "--device", "cpu")
    assert result.code == 0, result.err
    config = json.loads((run / "fold0" / "config.json").read_text())
    assert config["split"] == "strong+weak"
    assert config["labels"] == {"strong": None, "weak": str(noisy.resolve())}
    folds = json.loads((run / "folds.json").read_text())
    assert folds["held_out"]["fold0"] == ds.ids("strong")[:4] + ds.ids("weak")[:4]
    report = predict(run, shapes, "weak", tmp_path / "preds", device="cpu")
    assert report["out_of_fold"] == 8


def test_train_cli_split_and_labels_errors(cli, shapes, tmp_path):
    from conftest import assert_one_line_error

    base = ["train", shapes, "--split", "strong", "--out", tmp_path / "r", "--epochs", "1", "--device", "cpu"]
    assert_one_line_error(cli(*base, "--labels", f"weak={tmp_path}"), "--labels", "SPLIT one of strong", "'weak'")
    assert_one_line_error(cli(*base, "--split", "strong"), "--split", "distinct")
    assert_one_line_error(cli(*base, "--labels", tmp_path, "--labels", tmp_path / "x"), "--labels", "one DIR")
    assert_one_line_error(cli(*base, "--split", "weak", "--labels", f"weak={tmp_path}", "--labels", f"weak={tmp_path}"),
                          "one dir for split 'weak'")
    assert_one_line_error(cli(*base, "--split", "nosuch"), "nosuch")
    assert not (tmp_path / "r").exists()
