"""The data contract's readers and writers: every bad-input case names file, expectation and finding."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from noisyseg.errors import InputError
from noisyseg.io import Dataset, FeaturesDir, LabelDir, ProbsDir, WeightsDir, atomic_write, check_id


@pytest.fixture
def data(shapes, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(shapes, root)
    return root


def _probs(C=5, H=48, W=48, seed=0):
    p = np.random.default_rng(seed).random((C, H, W)).astype(np.float32)
    return p / p.sum(0)


def test_dataset_reads_contract(data):
    ds = Dataset(data)
    assert ds.num_classes == 5 and ds.ignore_index == 255
    ids = ds.ids("strong")
    assert len(ids) == 8 and set(ids).isdisjoint(ds.ids("weak"))
    assert ds.load_image(ids[0]).shape == (48, 48, 3)
    mask = ds.load_mask(ids[0])
    assert mask.dtype == np.uint8 and mask.shape == (48, 48)
    assert ds.splits() == ["strong", "weak"]


def test_missing_things(data, tmp_path):
    with pytest.raises(InputError, match="dataset.json"):
        Dataset(tmp_path)
    with pytest.raises(InputError, match="no such directory"):
        Dataset(tmp_path / "nope")
    ds = Dataset(data)
    with pytest.raises(InputError, match=r"known splits: strong, weak"):
        ds.ids("train")
    os.remove(ds.mask_path("strong_0000"))
    with pytest.raises(InputError, match="strong_0000.png: expected a label PNG, found no such file"):
        ds.load_mask("strong_0000")
    with pytest.raises(InputError, match="no such file"):
        ds.image_path("ghost")


@pytest.mark.parametrize("bad_id", ["../etc", "a/b", "a\\b", "..", ""])
def test_ids_with_path_separators_rejected(data, bad_id):
    with pytest.raises(InputError, match="without path separators"):
        check_id(bad_id, "x")
    (data / "splits" / "evil.txt").write_text(f"strong_0000\n{bad_id}\n" if bad_id else "strong_0000\n/\n")
    with pytest.raises(InputError, match="evil.txt"):
        Dataset(data).ids("evil")


def test_duplicate_ids_in_split(data):
    (data / "splits" / "dup.txt").write_text("strong_0000\nstrong_0000\n")
    with pytest.raises(InputError, match="'strong_0000' twice"):
        Dataset(data).ids("dup")


def test_bad_dataset_json(data):
    (data / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="dataset.json: expected valid JSON"):
        Dataset(data)
    (data / "dataset.json").write_text(json.dumps({"name": "x", "classes": []}))
    with pytest.raises(InputError, match="'classes'"):
        Dataset(data)


def test_mask_size_mismatch(data):
    ds = Dataset(data)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(ds.mask_path("strong_0001"))
    with pytest.raises(InputError, match=r"strong_0001.png: expected size 48x48 \(W x H\) like its image, found 48x40"):
        ds.load_mask("strong_0001")


def test_class_ids_out_of_range(data):
    ds = Dataset(data)
    mask = ds.load_mask("strong_0002").copy()
    mask[0, :3] = 7
    mask[1, 0] = 255  # ignore is fine
    Image.fromarray(mask).save(ds.mask_path("strong_0002"))
    with pytest.raises(InputError, match=r"expected class ids in 0..4 or 255, found value 7 in 3 pixels"):
        ds.load_mask("strong_0002")


def test_palette_and_grey_pngs_read_alike_rgb_rejected(tmp_path):
    label = np.random.default_rng(0).integers(0, 5, (16, 20)).astype(np.uint8)
    label[0, 0] = 255
    d = LabelDir(tmp_path)
    d.write("grey", label)
    d.write("pal", label, palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]])
    assert Image.open(d.path("grey")).mode == "L" and Image.open(d.path("pal")).mode == "P"
    np.testing.assert_array_equal(d.read("grey", 5), label)
    np.testing.assert_array_equal(d.read("pal", 5), label)
    Image.fromarray(np.stack([label] * 3, -1)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match=r"rgb.png: expected a single-channel PNG .* found mode 'RGB'"):
        d.read("rgb", 5)


def test_probs_validation(tmp_path):
    d = ProbsDir(tmp_path)
    good = _probs()
    d.write("ok", good)
    got = d.read("ok", 5, (48, 48))
    assert got.dtype == np.float16 and got.shape == (5, 48, 48)
    np.save(tmp_path / "shape.npy", good[:4])
    with pytest.raises(InputError, match=r"shape.npy: expected probabilities of shape \(5, 48, 48\), found shape \(4, 48, 48\)"):
        d.read("shape", 5, (48, 48))
    nan = good.copy()
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputError, match="nan.npy: expected finite values, found 1 NaN/inf values"):
        d.read("nan", 5)
    np.save(tmp_path / "sum.npy", good * 1.5)
    with pytest.raises(InputError, match="sum.npy: expected probabilities summing to 1 over classes, found a pixel summing to 1.5"):
        d.read("sum", 5)
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(InputError, match="junk.npy: expected a .npy file"):
        d.read("junk", 5)
    with pytest.raises(InputError, match="missing.npy: expected .* found no such file"):
        d.read("missing", 5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("bad, found", [(np.nan, "1 NaN/inf values"), (np.inf, "1 NaN/inf values"),
                                        (-np.inf, "1 NaN/inf values"), (-0.25, "minimum -0.25")])
def test_probs_bad_values_in_each_dtype(tmp_path, dtype, bad, found):
    probs = _probs().astype(dtype)
    probs[2, 7, 9] = bad
    np.save(tmp_path / "bad.npy", probs)
    with pytest.raises(InputError, match=f"bad.npy: expected .*, found {found}"):
        ProbsDir(tmp_path).read("bad", 5)


def test_probs_read_into_a_batch_buffer(tmp_path):
    d = ProbsDir(tmp_path)
    half, single = _probs(seed=1).astype(np.float16), _probs(seed=2).astype(np.float32)
    d.write("half", half)
    np.save(tmp_path / "single.npy", single)
    batch = np.zeros((2, 5, 48, 48), np.float16)
    got = d.read("half", 5, (48, 48), out=batch[0])
    assert np.shares_memory(got, batch)
    np.testing.assert_array_equal(batch[0], half)
    d.read("single", 5, (48, 48), out=batch[1])  # another dtype: converted into the buffer
    np.testing.assert_array_equal(batch[1], single.astype(np.float16))
    raw = (tmp_path / "half.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:-100])
    with pytest.raises(InputError, match="cut.npy: expected a .npy file .*, found a truncated file"):
        d.read("cut", 5, (48, 48), out=batch[0])
    with pytest.raises(InputError, match=r"half.npy: expected probabilities of shape \(5, 40, 48\), found shape"):
        d.read("half", 5, (40, 48), out=np.zeros((5, 40, 48), np.float16))
    bad = half.copy()
    bad[0, 1, 2] = np.nan
    d.write("bad", bad)
    with pytest.raises(InputError, match="bad.npy: expected finite values"):
        d.read("bad", 5, (48, 48), out=batch[0])


def test_probs_revalidated_only_when_the_file_changes(tmp_path, monkeypatch):
    import noisyseg.io.dirs as dirs

    d = ProbsDir(tmp_path)
    d.write("a", _probs())
    calls = []
    real = dirs.check_probabilities
    monkeypatch.setattr(dirs, "check_probabilities", lambda arr, where: (calls.append(where), real(arr, where)))
    d.read("a", 5)
    d.read("a", 5)
    assert len(calls) == 1
    bad = _probs().astype(np.float16)
    bad[0, 0, 0] = np.nan
    np.save(tmp_path / "a.npy", bad)  # rewritten in place (same inode and size), later: validated again
    later = (tmp_path / "a.npy").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "a.npy", ns=(later, later))
    with pytest.raises(InputError, match="a.npy: expected finite values"):
        d.read("a", 5)
    assert len(calls) == 2
    assert ProbsDir(tmp_path).exists("a")  # another reader validates for itself
    with pytest.raises(InputError, match="a.npy: expected finite values"):
        ProbsDir(tmp_path).read("a", 5)


def test_labels_revalidated_only_when_the_file_changes(tmp_path, monkeypatch):
    """LabelDir scans an unchanged file's class ids once, as ProbsDir does; mode and size always."""
    import noisyseg.io.labels as labels

    d = LabelDir(tmp_path)
    label = np.random.default_rng(0).integers(0, 5, (16, 20)).astype(np.uint8)
    d.write("a", label)
    calls = []
    real = labels.check_label_values
    monkeypatch.setattr(labels, "check_label_values", lambda arr, C, where: (calls.append(where), real(arr, C, where)))
    np.testing.assert_array_equal(d.read("a", 5), label)
    np.testing.assert_array_equal(d.read("a", 5, (16, 20)), label)
    assert len(calls) == 1
    with pytest.raises(InputError, match="a.png: expected size 21x16"):
        d.read("a", 5, (16, 21))  # the size is checked on every read
    with pytest.raises(InputError, match="a.png: expected class ids in 0..2 or 255"):
        d.read("a", 3)  # validated for 5 classes, not for 3
    assert len(calls) == 2
    bad = label.copy()
    bad[0, 0] = 9
    Image.fromarray(bad).save(tmp_path / "a.png")  # rewritten in place, later: validated again
    later = (tmp_path / "a.png").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "a.png", ns=(later, later))
    with pytest.raises(InputError, match="a.png: expected class ids in 0..4 or 255, found value 9"):
        d.read("a", 5)
    with pytest.raises(InputError, match="found value 9"):
        LabelDir(tmp_path).read("a", 5)  # another reader validates for itself
    d.write("a", label)  # written anew: validated again, and fine
    np.testing.assert_array_equal(d.read("a", 5), label)
    assert len(calls) == 5


def test_class_maps_reader(tmp_path):
    from noisyseg.io.dirs import read_class_maps

    np.save(tmp_path / "c.npy", np.zeros((5, 6, 7), np.float16))
    assert read_class_maps(tmp_path / "c.npy", 5, "CAMs").shape == (5, 6, 7)
    assert read_class_maps(str(tmp_path / "c.npy"), 5, "logits", (6, 7)).dtype == np.float16
    with pytest.raises(InputError, match=r"c.npy: expected CAMs of shape \(4, h, w\), found shape \(5, 6, 7\)"):
        read_class_maps(tmp_path / "c.npy", 4, "CAMs")
    with pytest.raises(InputError, match=r"expected logits of shape \(5, 6, 8\), found shape"):
        read_class_maps(tmp_path / "c.npy", 5, "logits", (6, 8))
    with pytest.raises(InputError, match="no such file"):
        read_class_maps(tmp_path / "nope.npy", 5, "soft labels")


def test_probs_negative_zero_is_a_probability(tmp_path):
    probs = _probs().astype(np.float16)
    probs[:, 3, 4] = [1, -0.0, 0, 0, 0]  # -0.0 has the sign bit set but is not below 0
    np.save(tmp_path / "z.npy", probs)
    assert ProbsDir(tmp_path).read("z", 5)[1, 3, 4] == 0


def test_features_and_weights(tmp_path):
    f = FeaturesDir(tmp_path / "f")
    f.write("a", np.ones((8, 12, 12), np.float32))
    assert f.read("a", 8).dtype == np.float16
    with pytest.raises(InputError, match=r"features of shape \(16, h, w\)"):
        f.read("a", 16)
    w = WeightsDir(tmp_path / "w")
    weights = np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)
    w.write("png", weights)
    np.testing.assert_allclose(w.read("png", (48, 48)), weights, atol=0.5 / 255 + 1e-6)
    w.write("both", weights, as_float=True)
    assert w.path("both").suffix == ".npy"
    np.testing.assert_allclose(w.read("both"), weights, atol=1e-3)
    np.save(tmp_path / "w" / "neg.npy", -weights - 1)
    with pytest.raises(InputError, match="weights >= 0"):
        w.read("neg")
    with pytest.raises(InputError, match="like the image"):
        w.read("png", (40, 48))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def explode(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
