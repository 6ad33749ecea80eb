"""The hostile-input corpus: every bad file or option a user can hand noisyseg, fed to every command
that reads it. Each must give exit code 2, exactly one stderr line (``error: ...``) naming the file
or option, and leave no output file created or changed.

Inputs are a few 24x24 images; the hostile file is the first image of the split (``weak_0000``)
or a file every command reads first, so a command stops before it has written anything.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIRST = "weak_0000"
TINY_MODEL = ["--model", "deeplabv3plus", "-p", "width=4", "-p", "depth=1,1,1,1", "-p", "feature_dim=8"]
TRAIN = ["--epochs", "1", "--device", "cpu", "--crop-size", "16", "--batch-size", "4"]

# How each command is run on the inputs ``p`` (paths) into ``p["out"]``.
COMMANDS = {
    "corrupt": lambda p: ["corrupt", p["data"], "--split", "weak", "--out", p["out"]],
    "detect": lambda p: ["detect", p["data"], "--split", "weak", "--labels", p["labels"], "--probs", p["probs"],
                         "--strategy", "entropy", "--out", p["out"], "--device", "cpu"],
    "correct": lambda p: ["correct", p["data"], "--split", "weak", "--labels", p["labels"], "--probs", p["probs"],
                          "--strategy", "crf", "--out", p["out"], "--device", "cpu"],
    "pseudo-label": lambda p: ["pseudo-label", p["data"], "--split", "weak", "--probs", p["probs"],
                               "--strategy", "argmax", "--out", p["out"], "--device", "cpu"],
    "weight": lambda p: ["weight", p["data"], "--split", "weak", "--probs", p["probs"], "--labels", p["labels"],
                         "--strategy", "confidence", "--out", p["out"], "--device", "cpu"],
    "evaluate": lambda p: ["evaluate", p["data"], "--split", "weak", "--labels", p["labels"], "--probs", p["probs"]],
    "predict": lambda p: ["predict", p["run"], p["data"], "--split", "weak", "--out", p["out"], "--device", "cpu"],
    "train": lambda p: ["train", p["data"], "--split", "weak", "--labels", p["labels"], "--weights", p["weights"],
                        "--out", p["out"], *TRAIN, *TINY_MODEL],
    "train-on-masks": lambda p: ["train", p["data"], "--split", "weak", "--out", p["out"], *TRAIN, *TINY_MODEL],
}
DATASET_READERS = ["corrupt", "detect", "correct", "pseudo-label", "weight", "evaluate", "predict", "train"]
PIXEL_READERS = ["predict", "train", "correct"]  # the others read image headers only
MASK_READERS = ["corrupt", "detect", "correct", "pseudo-label", "weight", "evaluate", "train-on-masks"]
LABEL_READERS = ["detect", "correct", "weight", "evaluate", "train"]
PROBS_READERS = ["detect", "correct", "pseudo-label", "weight", "evaluate"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A clean dataset (splits weak: 3, strong: 2 images of 24x24), noisy labels, probs, weights
    and a trained run, from which each case copies the one input it spoils."""
    from noisyseg.io import Dataset, ProbsDir, WeightsDir
    from noisyseg.pipeline.corrupt import corrupt
    from noisyseg.synthetic import make_dataset
    from noisyseg.train.supervised import TrainConfig, train

    root = tmp_path_factory.mktemp("world")
    data = make_dataset(root / "data", splits={"weak": 3, "strong": 2}, size=24)
    ds = Dataset(data)
    corrupt(data, "weak", root / "labels", seed=0)
    rng = np.random.default_rng(0)
    probs, weights = ProbsDir(root / "probs"), WeightsDir(root / "weights")
    for image_id in ds.ids():
        p = rng.uniform(0.1, 1, (ds.num_classes, 24, 24)).astype(np.float32)
        probs.write(image_id, p / p.sum(0))
        weights.write(image_id, np.full((24, 24), 0.5, np.float32))
    train(TrainConfig(dataset=str(data), split="strong", out=str(root / "run"), model="deeplabv3plus", epochs=1, batch_size=2, crop_size=16,
                      model_params={"width": "4", "depth": "1,1,1,1", "feature_dim": "8"}, device="cpu"))
    return {"data": data, "labels": root / "labels", "probs": root / "probs", "weights": root / "weights",
            "run": root / "run"}


def _copy(world, tmp_path, key: str) -> Path:
    target = tmp_path / key
    shutil.copytree(world[key], target)
    return target


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))


def _npy(array) -> callable:
    return lambda path: np.save(path, array, allow_pickle=True)


def _other_model_weights(path: Path) -> None:
    import torch

    from noisyseg.models import DeepLabV3Plus

    torch.save({"model": DeepLabV3Plus(5, width=8, depth=(1, 1, 1, 1), feature_dim=8).state_dict()}, path)


def _pickled(path: Path) -> None:
    np.save(path, np.array([{"evil": 1}], dtype=object), allow_pickle=True)


def _dataset_json(edit):
    return "data", "dataset.json", lambda path: _edit_json(path, edit)


def _split(text: str):
    return "data", "splits/weak.txt", lambda path: path.write_text(text)


# name -> (input spoilt, file in it, how it is spoilt, commands that read it)
CASES = {
    "image-empty": ("data", f"images/{FIRST}.png", lambda p: p.write_bytes(b""), DATASET_READERS),
    "image-not-an-image": ("data", f"images/{FIRST}.png", lambda p: p.write_bytes(b"GIF89a nonsense" * 9), DATASET_READERS),
    "image-truncated": ("data", f"images/{FIRST}.png", _truncate, PIXEL_READERS),
    "image-over-pixel-limit": ("data", f"images/{FIRST}.png",
                               lambda p: Image.new("RGB", (40, 40)).save(p), DATASET_READERS),
    "mask-truncated": ("data", f"masks/{FIRST}.png", _truncate, MASK_READERS),
    "mask-rgb": ("data", f"masks/{FIRST}.png", lambda p: Image.new("RGB", (24, 24)).save(p), MASK_READERS),
    "mask-id-out-of-range": ("data", f"masks/{FIRST}.png",
                             lambda p: Image.fromarray(np.full((24, 24), 17, np.uint8)).save(p), MASK_READERS),
    "mask-wrong-size": ("data", f"masks/{FIRST}.png",
                        lambda p: Image.fromarray(np.zeros((20, 24), np.uint8)).save(p), MASK_READERS),
    "dataset-json-invalid": ("data", "dataset.json", lambda p: p.write_text("{oops"), DATASET_READERS),
    "ignore-index-null": (*_dataset_json(lambda m: m.update(ignore_index=None)), DATASET_READERS),
    "ignore-index-text": (*_dataset_json(lambda m: m.update(ignore_index="255")), DATASET_READERS),
    "ignore-index-fraction": (*_dataset_json(lambda m: m.update(ignore_index=254.6)), DATASET_READERS),
    "palette-short-colour": (*_dataset_json(lambda m: m.update(palette=[[1, 2]])), DATASET_READERS),
    "palette-out-of-range": (*_dataset_json(lambda m: m.update(palette=[[300, 0, 0]])), DATASET_READERS),
    "palette-not-a-list": (*_dataset_json(lambda m: m.update(palette="rainbow")), DATASET_READERS),
    "classes-duplicate": (*_dataset_json(lambda m: m["classes"].__setitem__(2, m["classes"][1])), DATASET_READERS),
    "classes-not-names": (*_dataset_json(lambda m: m.update(classes=[{"a": 1}])), DATASET_READERS),
    "split-empty": (*_split(""), DATASET_READERS),
    "split-path-like-id": (*_split("../weak_0000\n"), DATASET_READERS),
    "split-duplicate-id": (*_split(f"{FIRST}\n{FIRST}\n"), DATASET_READERS),
    "split-undecodable": ("data", "splits/weak.txt", lambda p: p.write_bytes(b"\xff\xfe\x00bad\n"), DATASET_READERS),
    "tags-not-an-object": ("data", "tags.json", lambda p: p.write_text("[1, 2]"), ["predict", "train-on-masks"]),
    "label-truncated": ("labels", f"{FIRST}.png", _truncate, LABEL_READERS),
    "label-rgb": ("labels", f"{FIRST}.png", lambda p: Image.new("RGB", (24, 24)).save(p), LABEL_READERS),
    "label-id-out-of-range": ("labels", f"{FIRST}.png",
                              lambda p: Image.fromarray(np.full((24, 24), 9, np.uint8)).save(p), LABEL_READERS),
    "label-empty": ("labels", f"{FIRST}.png", lambda p: p.write_bytes(b""), LABEL_READERS),
    "probs-nan": ("probs", f"{FIRST}.npy", _npy(np.full((5, 24, 24), np.nan, np.float16)), PROBS_READERS),
    "probs-negative": ("probs", f"{FIRST}.npy", _npy(np.full((5, 24, 24), -0.2, np.float16)), PROBS_READERS),
    "probs-not-summing-to-1": ("probs", f"{FIRST}.npy", _npy(np.full((5, 24, 24), 0.5, np.float16)), PROBS_READERS),
    "probs-ragged-shape": ("probs", f"{FIRST}.npy", _npy(np.full((5, 24, 23), 0.2, np.float16)), PROBS_READERS),
    "probs-integers": ("probs", f"{FIRST}.npy", _npy(np.ones((5, 24, 24), np.int64)), PROBS_READERS),
    "probs-float128": ("probs", f"{FIRST}.npy", _npy(np.full((5, 24, 24), 0.2, np.longdouble)), PROBS_READERS),
    "probs-pickled": ("probs", f"{FIRST}.npy", _pickled, PROBS_READERS),
    "probs-truncated": ("probs", f"{FIRST}.npy", _truncate, PROBS_READERS),
    "weights-png-truncated": ("weights", f"{FIRST}.png", _truncate, ["train"]),
    "weights-png-rgb": ("weights", f"{FIRST}.png", lambda p: Image.new("RGB", (24, 24)).save(p), ["train"]),
    "weights-npy-negative": ("weights", f"{FIRST}.npy", _npy(np.full((24, 24), -1, np.float16)), ["train"]),
    "weights-npy-nan": ("weights", f"{FIRST}.npy", _npy(np.full((24, 24), np.nan, np.float32)), ["train"]),
    "run-config-invalid": ("run", "config.json", lambda p: p.write_text("{oops"), ["predict"]),
    "run-config-no-model": ("run", "config.json", lambda p: _edit_json(p, lambda c: c.pop("model")), ["predict"]),
    "run-config-bad-params": ("run", "config.json",
                              lambda p: _edit_json(p, lambda c: c["model_params"].update(depth="a,b")), ["predict"]),
    "run-weights-of-another-model": ("run", "model.pt", lambda p: _other_model_weights(p), ["predict"]),
    "run-weights-truncated": ("run", "model.pt", _truncate, ["predict"]),
    "run-weights-pickle": ("run", "model.pt", lambda p: p.write_bytes(pickle.dumps(print)), ["predict"]),
    "run-folds-index": ("run", "folds.json", lambda p: p.write_text('{"held_out": [1, 2]}'), ["predict"]),
}


def _snapshot(root: Path) -> dict[str, bytes] | None:
    if not root.exists():
        return None
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_refused(result, *fragments) -> None:
    """Exit 2 and exactly one stderr line, an error containing every fragment."""
    lines = result.err.splitlines()
    assert result.code == 2, result
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file(case, world, cli, tmp_path, monkeypatch):
    key, relative, spoil, commands = CASES[case]
    paths = {**world, key: _copy(world, tmp_path, key)}
    hostile = paths[key] / relative
    spoil(hostile)
    if case == "image-over-pixel-limit":
        monkeypatch.setenv("NOISYSEG_MAX_IMAGE_PIXELS", "1000")  # 24x24 images pass, the 40x40 one does not
    before = _snapshot(paths[key])
    for command in commands:
        out = tmp_path / f"out-{command}"
        with warnings.catch_warnings(record=True) as caught:  # a library's warning would be a second line
            warnings.simplefilter("always")
            result = cli(*COMMANDS[command]({**paths, "out": out}))
        assert not caught, (command, [str(w.message) for w in caught])
        assert_refused(result, str(hostile))
        assert not out.exists(), (command, sorted(p.name for p in out.rglob("*")))
    assert _snapshot(paths[key]) == before  # inputs are read, never "repaired"


# Options and directories a command refuses before it reads a file: (args, what the line names).
OPTION_CASES = {
    "noise-negative-shift": (lambda p: [*COMMANDS["corrupt"](p), "--noise", "boundary:k=-1"], "boundary:k=-1"),
    "noise-probability-above-1": (lambda p: [*COMMANDS["corrupt"](p), "--noise", "swap:p=2"], "swap:p=2"),
    "noise-probability-nan": (lambda p: [*COMMANDS["corrupt"](p), "--noise", "drop:p=nan"], "drop:p=nan"),
    "noise-parameter-twice": (lambda p: [*COMMANDS["corrupt"](p), "--noise", "swap:p=0.1,p=0.2"], "'p' twice"),
    "corrupt-negative-seed": (lambda p: [*COMMANDS["corrupt"](p), "--seed", "-5"], "--seed"),
    "train-negative-seed": (lambda p: [*COMMANDS["train"](p), "--seed", "-5"], "--seed"),
    "train-seed-not-a-number": (lambda p: [*COMMANDS["train"](p), "--seed", "abc"], "--seed"),
    "train-bad-depth": (lambda p: [*COMMANDS["train"](p), "-p", "depth=a,b"], "depth"),
    "train-parameter-twice": (lambda p: [*COMMANDS["train-on-masks"](p), "-p", "width=8"], "'width'"),
    "detect-parameter-twice": (lambda p: [*COMMANDS["detect"](p), "-p", "alpha=0.2", "-p", "alpha=0.6"], "'alpha'"),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_hostile_option(case, world, cli, tmp_path):
    args, fragment = OPTION_CASES[case]
    out = tmp_path / "out"
    assert_refused(cli(*args({**world, "out": out})), fragment)
    assert not out.exists()


@pytest.mark.parametrize("command", ["corrupt", "detect", "correct", "pseudo-label", "weight", "predict", "train"])
def test_out_naming_a_file(command, world, cli, tmp_path):
    mine = tmp_path / "a-file"
    mine.write_text("mine")
    for out, found in ((mine, "a file"), (mine / "run", "Not a directory")):
        assert_refused(cli(*COMMANDS[command]({**world, "out": out})), str(out), found)
    assert mine.read_text() == "mine"


def test_spoilt_input_on_resume_changes_nothing(world, cli, tmp_path):
    """A finished output rerun after one of its inputs, or its own scores, got damaged: refused, and
    the output directory (marker, record of finished files, reports) is left byte for byte."""
    labels = _copy(world, tmp_path, "labels")
    out = tmp_path / "out"
    args = [*COMMANDS["detect"]({**world, "labels": labels, "out": out}), "--scores"]
    assert cli(*args).code == 0
    for spoilt in (labels / f"{FIRST}.png", out / "scores" / "weak_0001.npy"):
        saved = spoilt.read_bytes()
        _truncate(spoilt)
        before = _snapshot(out)
        assert_refused(cli(*args), str(spoilt))
        assert _snapshot(out) == before
        spoilt.write_bytes(saved)
    assert cli(*args).code == 0


def test_big_endian_probs_are_read_as_any_other(world, cli, tmp_path):
    """Byte order is not an error: float16 probs saved big-endian give the same outputs."""
    probs = _copy(world, tmp_path, "probs")
    for path in probs.glob("*.npy"):
        np.save(path, np.load(path).astype(">f2"))
    little, big = tmp_path / "little", tmp_path / "big"
    assert cli(*COMMANDS["detect"]({**world, "out": little})).code == 0
    assert cli(*COMMANDS["detect"]({**world, "probs": probs, "out": big})).code == 0
    for path in little.glob("*.png"):
        assert (big / path.name).read_bytes() == path.read_bytes()


def test_one_line_in_a_log_file(world, tmp_path):
    """A real process whose stderr is a file, not a terminal: the error is the only line there (no
    progress bar state, no warning), and the exit code is 2."""
    data = _copy(world, tmp_path, "data")
    (data / "images" / f"{FIRST}.png").write_bytes(b"")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NOISYSEG_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        code = subprocess.run([sys.executable, "-m", "noisyseg.cli.main",
                               *map(str, COMMANDS["detect"]({**world, "data": data, "out": tmp_path / "out"}))],
                              env=env, stderr=stderr, stdout=subprocess.DEVNULL, timeout=120).returncode
    assert code == 2
    assert log.read_text().splitlines() == [
        f"error: {data / 'images' / FIRST}.png: expected a readable RGB image, found an empty file"]


@pytest.mark.parametrize("spoil", ["config-damaged", "checkpoint-of-another-model", "checkpoint-truncated"])
def test_damaged_run_directory_on_train_resume(spoil, world, cli, tmp_path):
    """Rerunning the training that made a run directory resumes it; damaged, it is refused in one
    line naming the file, and nothing in it changes."""
    run = _copy(world, tmp_path, "run")
    hostile = run / ("config.json" if spoil == "config-damaged" else "checkpoint.pt")
    {"config-damaged": lambda p: p.write_text("{oops"), "checkpoint-of-another-model": _other_model_weights,
     "checkpoint-truncated": _truncate}[spoil](hostile)
    before = _snapshot(run)
    args = ["train", world["data"], "--split", "strong", "--out", run, "--epochs", "1", "--batch-size", "2",
            "--crop-size", "16", "--device", "cpu", *TINY_MODEL]
    assert_refused(cli(*args), str(hostile))
    assert _snapshot(run) == before
