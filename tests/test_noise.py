import numpy as np
import pytest
from scipy import ndimage

from noisyseg.errors import ParameterError
from noisyseg.noise import DEFAULT_NOISE, corrupt_mask, image_rng, parse_noise_spec
from noisyseg.noise.boundary import boundary_shift
from noisyseg.noise.cam import cam_like
from noisyseg.noise.drop import object_drop
from noisyseg.noise.swap import class_swap


def _scene():
    label = np.zeros((64, 64), np.uint8)
    label[10:30, 10:30] = 1
    label[40:55, 35:60] = 2
    label[5:12, 45:52] = 3
    label[60:, :] = 255
    return label


def test_spec_round_trip_and_errors():
    steps = parse_noise_spec(DEFAULT_NOISE)
    assert [s.model for s in steps] == ["cam", "boundary", "drop", "swap"]
    assert parse_noise_spec("+".join(map(str, steps))) == steps
    with pytest.raises(ParameterError, match="rate"):
        parse_noise_spec("drop:rate=2")
    with pytest.raises(ParameterError, match="expected key=value"):
        parse_noise_spec("drop:p")


def test_deterministic_per_seed_and_id():
    label = _scene()
    steps = parse_noise_spec(DEFAULT_NOISE)
    a = corrupt_mask(label, steps, image_rng(1, "img"), 4)
    b = corrupt_mask(label, steps, image_rng(1, "img"), 4)
    np.testing.assert_array_equal(a, b)
    others = [corrupt_mask(label, steps, image_rng(s, "img"), 4) for s in range(2, 8)]
    assert any((o != a).any() for o in others)


def test_ignore_is_preserved_by_every_model():
    label = _scene()
    for seed in range(5):
        rng = np.random.default_rng(seed)
        for fn in (boundary_shift, object_drop, class_swap, cam_like):
            out = fn(label, rng, 4)
            assert out.dtype == np.uint8
            np.testing.assert_array_equal(out == 255, label == 255)
            assert set(np.unique(out)) <= {0, 1, 2, 3, 255}


def test_boundary_shift_changes_only_near_boundaries():
    label = _scene()
    k = 3
    out = boundary_shift(label, np.random.default_rng(0), 4, k=k, p=1.0)
    changed = out != label
    assert changed.any()
    edges = np.zeros_like(changed)
    for c in range(4):
        m = label == c
        edges |= m ^ ndimage.binary_erosion(m)
    dist = ndimage.distance_transform_edt(~edges)
    # Several classes may shift one after another, each by at most k.
    assert dist[changed].max() <= 3 * k + 1


def test_object_drop_removes_whole_components():
    label = _scene()
    out = object_drop(label, np.random.default_rng(0), 4, p=1.0, background=0, max_share=0.5)
    for c in (1, 2, 3):
        assert not (out == c).any()
    assert (out[label == 1] == 0).all()


def test_class_swap_relabels_whole_components():
    label = _scene()
    out = class_swap(label, np.random.default_rng(0), 4, p=1.0, max_share=0.5)
    for c in (1, 2, 3):
        values = np.unique(out[label == c])
        assert len(values) == 1 and values[0] != c


def test_cam_like_is_coarse_and_shrinks_foreground():
    label = _scene()
    out = cam_like(label, np.random.default_rng(0), 4, scale=8, sigma=1.0, shrink=0.6)
    assert (out == 1).sum() < (label == 1).sum()
    assert 0 < (out != label)[label != 255].mean() < 0.5


@pytest.mark.camvid
def test_default_mix_noise_rate_on_camvid(camvid_root):
    from noisyseg.io import Dataset

    ds = Dataset(camvid_root)
    steps = parse_noise_spec(DEFAULT_NOISE)
    wrong = total = 0
    for image_id in ds.ids("train")[::30]:
        gt = ds.load_mask(image_id)
        noisy = corrupt_mask(gt, steps, image_rng(0, image_id), ds.num_classes)
        valid = gt != 255
        wrong += ((noisy != gt) & valid).sum()
        total += valid.sum()
    assert 0.15 <= wrong / total <= 0.35
