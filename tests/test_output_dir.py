"""Output directories: run ids and the record of finished files, --force, the claim a failed run
gives back, the lock every writer takes, and file modes."""

import json
import os
import stat

import numpy as np
import pytest
from conftest import assert_one_line_error
from PIL import Image

from noisyseg.errors import InputError, NoisySegError, OutputExistsError
from noisyseg.io.atomic import atomic_write
from noisyseg.io.lock import locked
from noisyseg.pipeline.output import DONE_FILE, RUN_FILE, OutputDir


def _write(output: OutputDir, name: str, text: str = "x"):
    path = atomic_write(output.root / name, lambda f: f.write(text), mode="w")
    output.record(path)
    return path


def test_resume_trusts_only_what_the_run_recorded(tmp_path):
    with OutputDir(tmp_path / "o", "c", {"a": 1}) as output:
        _write(output, "done.png")
        (tmp_path / "o" / "unrecorded.png").write_text("killed before it was recorded")
    with OutputDir(tmp_path / "o", "c", {"a": 1}) as output:
        assert output.done(tmp_path / "o" / "done.png")
        assert not output.done(tmp_path / "o" / "unrecorded.png")
    # A line cut short by a kill is not a record.
    with open(tmp_path / "o" / DONE_FILE, "a") as f:
        f.write("unrecorded.p")
    with OutputDir(tmp_path / "o", "c", {"a": 1}) as output:
        assert not output.done(tmp_path / "o" / "unrecorded.png") and not output.done(tmp_path / "o" / "unrecorded.p")


def test_force_deletes_the_replaced_runs_files_only(tmp_path):
    out = tmp_path / "o"
    with OutputDir(out, "c", {"a": 1}) as output:
        _write(output, "old.png")
        _write(output, "sub/old.npy")
    (out / "report.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="other parameters"):
        OutputDir(out, "c", {"a": 2})
    with OutputDir(out, "c", {"a": 2}, force=True) as output:
        assert not (out / "old.png").exists() and not (out / "sub" / "old.npy").exists()
        assert not (out / "report.json").exists() and (out / "notes.txt").read_text() == "mine"
        assert not output.done(out / "old.png")
    first, second = json.loads((out / RUN_FILE).read_text()), None
    with OutputDir(out, "c", {"a": 2}, force=True):
        second = json.loads((out / RUN_FILE).read_text())
    assert first["params"] == second["params"] and first["run"] != second["run"]


def test_a_record_never_reaches_outside_the_directory(tmp_path):
    out, victim = tmp_path / "o", tmp_path / "victim.txt"
    victim.write_text("keep")
    with OutputDir(out, "c", {"a": 1}):
        pass
    with open(out / DONE_FILE, "a") as f:
        f.write("../victim.txt\n" + str(victim) + "\n")
    with OutputDir(out, "c", {"a": 1}, force=True):
        pass
    assert victim.read_text() == "keep"


def test_a_run_that_fails_before_any_output_gives_its_claim_back(tmp_path):
    out = tmp_path / "new" / "o"
    with pytest.raises(RuntimeError):
        with OutputDir(out, "c", {"a": 1}):
            raise RuntimeError("bad input")
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with OutputDir(existing, "c", {"a": 1}):
            raise KeyboardInterrupt
    assert [p.name for p in existing.iterdir() if p.name != ".lock"] == []
    with OutputDir(existing, "c", {"a": 2}):  # other parameters are welcome: nothing was done
        pass
    with pytest.raises(RuntimeError):  # a run that finished a file keeps its claim, to resume
        with OutputDir(existing, "c", {"a": 2}) as output:
            _write(output, "one.png")
            raise RuntimeError("bad input")
    with pytest.raises(OutputExistsError):
        OutputDir(existing, "c", {"a": 3})


def test_corrected_rerun_is_not_refused(cli, shapes, tmp_path):
    """Defect: a run failing on bad input left its marker, and the fixed rerun was refused."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    mask = data / "masks" / "weak_0000.png"
    good = mask.read_bytes()
    mask.write_bytes(good[:40])
    out = tmp_path / "out"
    assert_one_line_error(cli("corrupt", data, "--split", "weak", "--out", out, "--seed", "1"), str(mask))
    assert not out.exists()
    mask.write_bytes(good)
    assert cli("corrupt", data, "--split", "weak", "--out", out, "--seed", "2").code == 0


def test_train_failing_before_its_first_checkpoint_leaves_no_config(cli, shapes, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    (data / "images" / "strong_0003.png").write_bytes(b"")
    out = tmp_path / "run"
    tiny = ["--model", "deeplabv3plus", "-p", "width=4", "-p", "depth=1,1,1,1", "-p", "feature_dim=8", "--epochs", "1", "--crop-size", "16",
            "--device", "cpu"]
    assert_one_line_error(cli("train", data, "--split", "strong", "--out", out, *tiny), "strong_0003.png")
    assert not out.exists()
    assert_one_line_error(cli("train", shapes, "--split", "strong", "--out", out, *tiny, "-p", "depth=a,b"), "depth")
    assert not out.exists()
    out.mkdir()
    (data / "images" / "strong_0003.png").write_bytes((shapes / "images" / "strong_0003.png").read_bytes())
    assert cli("train", data, "--split", "strong", "--out", out, *tiny, "--seed", "1").code == 0


def test_writers_lock_their_output(cli, shapes_chain, tmp_path):
    c = shapes_chain
    out = tmp_path / "o"
    with locked(out, "noisyseg detect"):  # another process's run, as the kernel sees it
        result = cli("detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                     "--strategy", "entropy", "--out", out)
        assert_one_line_error(result, str(out), "another 'noisyseg detect' running")
        with pytest.raises(NoisySegError, match="another"):
            OutputDir(out, "corrupt", {})
    assert [p.name for p in out.iterdir()] == [".lock"]


def test_output_files_respect_the_umask(cli, shapes, tmp_path):
    old = os.umask(0o002)
    try:
        path = atomic_write(tmp_path / "a.txt", lambda f: f.write("x"), mode="w")
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
        os.umask(0o022)
        assert cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "o").code == 0
        for p in (tmp_path / "o").iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    finally:
        os.umask(old)


def test_temp_files_of_a_killed_writer_are_removed(tmp_path):
    out = tmp_path / "o"
    with OutputDir(out, "c", {}):
        pass
    (out / "sub").mkdir()
    for stale in (out / ".weak_0000.png.0a1b2c3d.tmp", out / "sub" / ".x.npy.abcdefgh.tmp"):
        stale.write_bytes(b"half")
    (out / ".keep.tmp").write_bytes(b"not one of ours")
    with OutputDir(out, "c", {}):
        assert sorted(p.name for p in out.rglob("*.tmp")) == [".keep.tmp"]


def test_empty_split_is_refused_everywhere(cli, shapes_chain, tmp_path):
    import shutil

    from noisyseg.io import Dataset

    data = tmp_path / "data"
    shutil.copytree(shapes_chain["data"], data)
    split = data / "splits" / "nothing.txt"
    split.write_text("\n")
    with pytest.raises(InputError, match="at least one image id"):
        Dataset(data).ids("nothing")
    for args in (["corrupt", data, "--split", "nothing", "--out", tmp_path / "a"],
                 ["detect", data, "--split", "nothing", "--labels", shapes_chain["noisy"],
                  "--probs", shapes_chain["probs"], "--strategy", "entropy", "--out", tmp_path / "b"]):
        assert_one_line_error(cli(*args), str(split), "an empty file")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_duplicate_class_names_are_refused(tmp_path):
    from noisyseg.io import Dataset

    (tmp_path / "dataset.json").write_text(json.dumps({"name": "d", "classes": ["road", "car", "road"]}))
    with pytest.raises(InputError, match="'road' twice"):
        Dataset(tmp_path)


def test_images_over_the_pixel_limit_say_how_to_raise_it(tmp_path, monkeypatch):
    from noisyseg.io.images import open_image

    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setenv("NOISYSEG_MAX_IMAGE_PIXELS", "1999")
    with pytest.raises(InputError, match=r"at most 1999 pixels .*NOISYSEG_MAX_IMAGE_PIXELS.*found 2000 pixels"):
        with open_image(tmp_path / "big.png", "an image"):
            pass
    monkeypatch.setenv("NOISYSEG_MAX_IMAGE_PIXELS", "2000")
    with open_image(tmp_path / "big.png", "an image") as im:
        assert im.size == (50, 40)
