"""``noisyseg import`` for each layout on tiny fixtures (exact conversion), and ``noisyseg export``."""

import json
import os

import numpy as np
from conftest import assert_one_line_error
from PIL import Image

from noisyseg.io import Dataset, LabelDir
from noisyseg.io.palette import voc_palette


def save_rgb(path, h=6, w=8, seed=0, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, format=fmt)


def save_index(path, ids, palette=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.asarray(ids, np.uint8))
    if palette is not None:
        im = im.convert("P")
        flat = [v for rgb in palette for v in rgb]
        im.putpalette(flat + [0] * (768 - len(flat)))
    im.save(path)


def save_colour(path, colours):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(colours, np.uint8)).save(path)


def mask_of(root, image_id):
    return np.array(Image.open(root / "masks" / f"{image_id}.png"))


def no_leftovers(parent, name):
    return not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_voc(cli, tmp_path):
    src = tmp_path / "VOCdevkit" / "VOC2012"
    a = np.zeros((6, 8), np.uint8)
    a[1:4, 2:6] = 15  # person
    a[0, :] = 255  # border
    b = np.full((6, 8), 7, np.uint8)  # car
    for image_id, ids, seed in (("2007_000032", a, 0), ("2007_000033", b, 1)):
        save_rgb(src / "JPEGImages" / f"{image_id}.jpg", seed=seed, fmt="JPEG")
        save_index(src / "SegmentationClass" / f"{image_id}.png", ids, voc_palette())
    save_rgb(src / "JPEGImages" / "2008_000001.jpg", seed=2, fmt="JPEG")  # a test image: no mask
    (src / "ImageSets" / "Segmentation").mkdir(parents=True)
    (src / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n")
    (src / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    (src / "ImageSets" / "Segmentation" / "test.txt").write_text("2008_000001\n")
    (src / "ImageSets" / "Segmentation" / "trainval.txt").write_text("2007_000032\n2007_000033\n")

    assert_one_line_error(cli("import", "voc", tmp_path / "VOCdevkit", "--out", tmp_path / "d"), "did you mean", "VOC2012")
    result = cli("import", "voc", src, "--out", tmp_path / "voc", "--json")
    assert result.code == 0, result
    report = json.loads(result.out)
    assert report["images"] == 3 and report["masks"] == 2 and report["splits"]["trainval"] == 2
    ds = Dataset(tmp_path / "voc")
    assert ds.num_classes == 21 and ds.classes[15] == "person" and ds.palette == voc_palette(21)
    np.testing.assert_array_equal(ds.load_mask("2007_000032"), a)
    np.testing.assert_array_equal(ds.load_mask("2007_000033"), b)
    assert not ds.has_mask("2008_000001") and ds.ids("test") == ["2008_000001"]
    assert ds.ids("trainval") == ["2007_000032", "2007_000033"]
    image = ds.image_path("2007_000032")
    assert image.is_symlink() and image.resolve() == (src / "JPEGImages" / "2007_000032.jpg").resolve()
    assert Image.open(tmp_path / "voc" / "masks" / "2007_000032.png").mode == "P"

    # Again: refused without --force; with --copy and --force, replaced by copies.
    assert_one_line_error(cli("import", "voc", src, "--out", tmp_path / "voc"), "--force")
    assert cli("import", "voc", src, "--out", tmp_path / "voc", "--copy", "--force").code == 0
    image = Dataset(tmp_path / "voc").image_path("2007_000032")
    assert not image.is_symlink() and image.read_bytes() == (src / "JPEGImages" / "2007_000032.jpg").read_bytes()
    assert no_leftovers(tmp_path, "voc")


def test_cityscapes(cli, tmp_path):
    src = tmp_path / "cityscapes"
    label_ids = np.array([[7, 26, 0, 33], [4, 24, 255, 11]], np.uint8)
    train_ids = np.array([[0, 13, 255, 18], [255, 11, 255, 2]], np.uint8)
    save_rgb(src / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png", 2, 4)
    save_index(src / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png", label_ids)
    save_rgb(src / "leftImg8bit" / "val" / "lindau" / "lindau_000001_000019_leftImg8bit.png", 2, 4, seed=1)
    save_index(src / "gtFine" / "val" / "lindau" / "lindau_000001_000019_gtFine_labelTrainIds.png", train_ids)
    save_index(src / "gtFine" / "val" / "lindau" / "lindau_000001_000019_gtFine_labelIds.png", label_ids * 0)  # unused
    result = cli("import", "cityscapes", src, "--out", tmp_path / "cs", "--json")
    assert result.code == 0, result
    ds = Dataset(tmp_path / "cs")
    assert ds.num_classes == 19 and ds.classes[13] == "car" and ds.palette[0] == [128, 64, 128]
    assert ds.ids("train") == ["aachen_000000_000019"] and ds.ids("val") == ["lindau_000001_000019"]
    np.testing.assert_array_equal(ds.load_mask("aachen_000000_000019"), train_ids)
    np.testing.assert_array_equal(ds.load_mask("lindau_000001_000019"), train_ids)

    bad = label_ids.copy()
    bad[0, 0] = 40
    save_index(src / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png", bad)
    assert_one_line_error(cli("import", "cityscapes", src, "--out", tmp_path / "cs2"), "labelIds.png", "value 40 in 1 pixels")
    assert not (tmp_path / "cs2").exists() and no_leftovers(tmp_path, "cs2")


CAMVID_COLOURS = "64 128 64\tAnimal\n128 0 0\tBuilding\n0 0 0\tVoid\n128 128 128\tSky\n"


def test_camvid_colour_masks(cli, tmp_path):
    src = tmp_path / "CamVid"
    (src).mkdir()
    (src / "label_colors.txt").write_text(CAMVID_COLOURS)
    colours = np.array([[[128, 0, 0], [0, 0, 0], [128, 128, 128]], [[64, 128, 64], [128, 0, 0], [0, 0, 0]]], np.uint8)
    expected = np.array([[1, 255, 2], [0, 1, 255]], np.uint8)
    for split, seed in (("train", 0), ("val", 1)):
        save_rgb(src / split / f"0001TP_00{seed}.png", 2, 3, seed=seed)
        save_colour(src / f"{split}_labels" / f"0001TP_00{seed}_L.png", colours)
    result = cli("import", "camvid", src, "--out", tmp_path / "cv", "--json")
    assert result.code == 0, result
    ds = Dataset(tmp_path / "cv")
    assert ds.classes == ["Animal", "Building", "Sky"] and ds.palette == [[64, 128, 64], [128, 0, 0], [128, 128, 128]]
    assert ds.ids("train") == ["0001TP_000"] and ds.ids("val") == ["0001TP_001"]
    np.testing.assert_array_equal(ds.load_mask("0001TP_000"), expected)

    colours[0, 0] = [1, 2, 3]
    save_colour(src / "val_labels" / "0001TP_001_L.png", colours)
    assert_one_line_error(cli("import", "camvid", src, "--out", tmp_path / "cv2"), "0001TP_001_L.png",
                          "colours of the colour table", "colour (1, 2, 3) in 1 pixels")
    assert not (tmp_path / "cv2").exists() and no_leftovers(tmp_path, "cv2")
    # A mask of another size than its image.
    save_colour(src / "val_labels" / "0001TP_001_L.png", np.zeros((3, 3, 3), np.uint8))
    assert_one_line_error(cli("import", "camvid", src, "--out", tmp_path / "cv2"), "size 3x2 (W x H)")
    # No colour table.
    (src / "label_colors.txt").unlink()
    assert_one_line_error(cli("import", "camvid", src, "--out", tmp_path / "cv2"), "label_colors.txt or class_dict.csv")


def test_camvid_flat_layout_with_class_dict(cli, tmp_path):
    src = tmp_path / "camvid"
    (src).mkdir()
    (src / "class_dict.csv").write_text("name,r,g,b\nSky,128,128,128\nRoad,128,64,128\nUnlabelled,0,0,0\n")
    save_rgb(src / "701_StillsRaw_full" / "Seq05VD_f00000.png", 1, 3)
    save_colour(src / "LabeledApproved_full" / "Seq05VD_f00000_L.png", [[[128, 64, 128], [0, 0, 0], [128, 128, 128]]])
    assert cli("import", "camvid", src, "--out", tmp_path / "cv").code == 0
    ds = Dataset(tmp_path / "cv")
    assert ds.classes == ["Sky", "Road"] and ds.ids("all") == ["Seq05VD_f00000"]
    np.testing.assert_array_equal(ds.load_mask("Seq05VD_f00000"), [[1, 255, 0]])


def test_folder(cli, tmp_path):
    src = tmp_path / "mine"
    save_rgb(src / "images" / "a.jpg", 2, 3, fmt="JPEG")
    save_rgb(src / "images" / "b.png", 2, 3, seed=1)
    save_index(src / "masks" / "a.png", [[0, 1, 11], [1, 1, 0]])
    save_index(src / "masks" / "b.png", [[11, 11, 0], [0, 1, 1]])
    (src / "classes.json").write_text(json.dumps({"0": "background", "1": "cat", "11": "void"}))
    result = cli("import", "folder", src, "--out", tmp_path / "f", "--json")
    assert result.code == 0, result
    ds = Dataset(tmp_path / "f")
    assert ds.classes == ["background", "cat"] and ds.ids("all") == ["a", "b"] and ds.palette is None
    np.testing.assert_array_equal(ds.load_mask("a"), [[0, 1, 255], [1, 1, 0]])
    assert ds.image_path("a").suffix == ".jpg"

    # Colour masks with {name: colour}, and splits given by the folder.
    save_colour(src / "masks" / "a.png", [[[0, 0, 0], [255, 0, 0], [255, 0, 0]], [[0, 0, 0]] * 3])
    save_colour(src / "masks" / "b.png", [[[255, 0, 0]] * 3, [[0, 0, 0]] * 3])
    (src / "splits").mkdir()
    (src / "splits" / "train.txt").write_text("b\n")
    classes = tmp_path / "colours.json"
    classes.write_text(json.dumps({"bg": [0, 0, 0], "cat": [255, 0, 0]}))
    assert cli("import", "folder", src, "--out", tmp_path / "g", "--classes", classes).code == 0
    ds = Dataset(tmp_path / "g")
    assert ds.palette == [[0, 0, 0], [255, 0, 0]] and ds.splits() == ["train"]
    np.testing.assert_array_equal(ds.load_mask("a"), [[0, 1, 1], [0, 0, 0]])
    # An index mask where only colours are known to the class map... fine; an unknown split id is not.
    (src / "splits" / "val.txt").write_text("zzz\n")
    assert_one_line_error(cli("import", "folder", src, "--out", tmp_path / "h", "--classes", classes), "val.txt", "'zzz'")
    (src / "splits" / "val.txt").unlink()
    # Two images with one id.
    save_rgb(src / "images" / "a.png", 2, 3)
    assert_one_line_error(cli("import", "folder", src, "--out", tmp_path / "h", "--classes", classes),
                          "unique image ids", "'a' twice")
    assert not (tmp_path / "h").exists()


def test_wrong_layouts(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    for fmt, fragment in (("voc", "Pascal VOC directory"), ("cityscapes", "Cityscapes directory"),
                          ("camvid", "CamVid directory"), ("folder", "images/ and masks/")):
        assert_one_line_error(cli("import", fmt, tmp_path / "empty", "--out", tmp_path / "x"), fragment)
    assert_one_line_error(cli("import", "coco", tmp_path / "empty", "--out", tmp_path / "x"), "unknown import format",
                          "voc, cityscapes, camvid, folder")
    assert_one_line_error(cli("import", "voc", tmp_path / "nowhere", "--out", tmp_path / "x"), "no such directory")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    src = tmp_path / "mine"
    save_rgb(src / "images" / "a.png", 2, 2)
    (src / "masks").mkdir()
    (src / "classes.json").write_text('["bg"]')
    assert_one_line_error(cli("import", "folder", src, "--out", tmp_path / "busy", "--force"), "not written by 'noisyseg import'")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    (src / "classes.json").write_text('{"bg": 3}')
    assert_one_line_error(cli("import", "folder", src, "--out", tmp_path / "x"), "classes.json", "a list of class names")
    assert not (tmp_path / "x").exists()


def test_export(cli, shapes_chain, tmp_path):
    c = shapes_chain
    grey = tmp_path / "grey"
    ds = Dataset(c["data"])
    for image_id in ds.ids("weak"):
        LabelDir(grey).write(image_id, LabelDir(c["noisy"]).read(image_id, ds.num_classes))
    result = cli("export", grey, "--palette", c["data"], "--out", tmp_path / "out", "--json")
    assert result.code == 0, result
    assert json.loads(result.out)["images"] == 8
    for image_id in ds.ids("weak"):
        im = Image.open(tmp_path / "out" / f"{image_id}.png")
        assert im.mode == "P" and im.getpalette()[: 3 * ds.num_classes] == [v for rgb in ds.palette for v in rgb]
        np.testing.assert_array_equal(np.array(im), LabelDir(grey).read(image_id, ds.num_classes))

    meta = json.loads((c["data"] / "dataset.json").read_text())
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"classes": meta["classes"], "palette": meta["palette"][:2]}))
    assert_one_line_error(cli("export", grey, "--palette", short, "--out", tmp_path / "out2"),
                          "short.json", "for each of the 5 classes", "2 colours")
    label = LabelDir(grey).read("weak_0003", ds.num_classes)
    label[0, 0] = 4
    LabelDir(grey).write("weak_0003", label)
    few = tmp_path / "few.json"
    few.write_text(json.dumps({"classes": meta["classes"][:2], "palette": meta["palette"][:2]}))
    assert_one_line_error(cli("export", grey, "--palette", few, "--out", tmp_path / "out2"), "weak_0003.png", "class ids in 0..1 or 255", "value 4")
    assert not (tmp_path / "out2").exists()


def test_import_then_export_round_trip(cli, tmp_path):
    src = tmp_path / "mine"
    save_rgb(src / "images" / "x.png", 3, 3)
    save_index(src / "masks" / "x.png", [[0, 1, 2], [2, 1, 0], [255, 255, 1]])
    (src / "classes.json").write_text(json.dumps({"classes": ["a", "b", "c"], "palette": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}))
    assert cli("import", "folder", src, "--out", tmp_path / "d").code == 0
    assert cli("export", tmp_path / "d" / "masks", "--palette", tmp_path / "d", "--out", tmp_path / "e").code == 0
    im = Image.open(tmp_path / "e" / "x.png")
    np.testing.assert_array_equal(np.array(im), mask_of(src, "x"))
    assert im.getpalette()[:9] == list(range(1, 10))
    assert os.path.islink(tmp_path / "d" / "images" / "x.png")
