"""The commands end to end on the tiny procedural dataset: outputs, reports, resume, and bad input."""

import json
import shutil

import numpy as np
import pytest
from conftest import assert_one_line_error

from noisyseg.errors import InputError
from noisyseg.io import Dataset, LabelDir


def test_corrupt_is_deterministic_and_resumable(cli, shapes, tmp_path):
    a = cli("corrupt", shapes, "--split", "weak", "--seed", "3", "--out", tmp_path / "a", "--json")
    assert a.code == 0, a
    report = json.loads(a.out)
    assert report["images"] == 8 and 0 < report["noise_rate"] < 1
    cli("corrupt", shapes, "--split", "weak", "--seed", "3", "--out", tmp_path / "b")
    ds = Dataset(shapes)
    for image_id in ds.ids("weak"):
        np.testing.assert_array_equal(LabelDir(tmp_path / "a").read(image_id, 5), LabelDir(tmp_path / "b").read(image_id, 5))
    saved = json.loads((tmp_path / "a" / "report.json").read_text())
    gt = ds.load_mask("weak_0000")
    noisy = LabelDir(tmp_path / "a").read("weak_0000", 5)
    assert saved["per_image_noise_rate"]["weak_0000"] == pytest.approx(float((gt != noisy)[gt != 255].mean()))
    # Same command again resumes (nothing rewritten); other parameters are refused without --force.
    mtime = (tmp_path / "a" / "weak_0000.png").stat().st_mtime_ns
    assert cli("corrupt", shapes, "--split", "weak", "--seed", "3", "--out", tmp_path / "a").code == 0
    assert (tmp_path / "a" / "weak_0000.png").stat().st_mtime_ns == mtime
    refused = cli("corrupt", shapes, "--split", "weak", "--seed", "4", "--out", tmp_path / "a")
    assert_one_line_error(refused, "--force")
    assert (tmp_path / "a" / "weak_0000.png").stat().st_mtime_ns == mtime
    assert cli("corrupt", shapes, "--split", "weak", "--seed", "4", "--out", tmp_path / "a", "--force").code == 0


def test_corrupt_bad_noise_spec(cli, shapes, tmp_path):
    assert_one_line_error(cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "x", "--noise", "blur:k=3"),
                          "unknown noise model 'blur'", "boundary")
    assert_one_line_error(cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "x", "--noise", "drop:q=3"),
                          "has no parameter 'q'")
    assert not (tmp_path / "x").exists()


def test_refuses_foreign_files(cli, shapes, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    assert_one_line_error(cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "out"), "not written by noisyseg")
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_detect_and_evaluate(cli, shapes_chain, tmp_path):
    c = shapes_chain
    args = ["detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
            "--strategy", "small-loss", "-p", "theta=auto", "-p", "calibrate_split=strong", "--out", tmp_path / "clean",
            "--scores", "--json"]
    result = cli(*args)
    assert result.code == 0, result
    report = json.loads(result.out)
    assert report["fitted"]["theta"] > 0 and report["fitted"]["curve"]
    assert report["cleaned_label_quality"]["precision"] > report["noisy_label_quality"]["precision"]
    q = report["detection_quality"]
    assert 0.5 < q["auroc"] <= 1 and 0 <= q["f1"] <= 1
    scores = np.load(tmp_path / "clean" / "scores" / "weak_0000.npy")
    assert scores.dtype == np.float16 and scores.shape == (48, 48)
    again = json.loads(cli(*args).out)
    assert again["skipped"] == 8 and again["detection_quality"] == pytest.approx(q, nan_ok=True)

    ev = cli("evaluate", c["data"], "--labels", tmp_path / "clean", "--split", "weak", "--json")
    assert ev.code == 0
    metrics = json.loads(ev.out)
    for key in ("miou", "pixel_accuracy", "coverage", "precision", "per_class_iou"):
        assert key in metrics
    assert metrics["coverage"] == pytest.approx(report["cleaned_label_quality"]["coverage"])
    assert metrics["precision"] == pytest.approx(report["cleaned_label_quality"]["precision"])

    bounded = cli(*[a for a in args if a != "--json"], "-p", "confidence=0.9", "--out", tmp_path / "bounded")
    assert bounded.code == 0, bounded
    shown = " ".join(bounded.out.split())
    assert "0.97 at 0.9 confidence over images" in shown and "bound" in shown
    table = cli("evaluate", c["data"], "--labels", tmp_path / "clean", "--probs", c["probs"])
    assert table.code == 0 and "ECE" in table.out and "per-class IoU" in table.out


def test_detect_bad_inputs(cli, shapes_chain, tmp_path):
    c = shapes_chain
    base = ["detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--out", tmp_path / "o"]
    assert_one_line_error(cli(*base, "--probs", c["probs"], "--strategy", "nope"),
                          "unknown detection strategy 'nope'", "small-loss", "entropy", "confident")
    assert_one_line_error(cli(*base, "--probs", c["probs"], "--strategy", "small-loss", "-p", "theta=auto"),
                          "calibrate_split")
    assert_one_line_error(cli(*base, "--probs", c["probs"], "--strategy", "small-loss", "-p", "theta=-1"),
                          "theta", "found -1")
    bad = tmp_path / "probs"
    shutil.copytree(c["probs"], bad)
    np.save(bad / "weak_0003.npy", np.full((5, 48, 48), 0.5, np.float16))
    result = cli(*base, "--probs", bad, "--strategy", "small-loss")
    assert_one_line_error(result, "weak_0003.npy", "summing to 1")
    assert not (tmp_path / "o" / "weak_0003.png").exists()
    with pytest.raises(InputError):  # --debug lets the traceback through
        cli("--debug", *base, "--probs", bad, "--strategy", "small-loss", "--force")


HELP_SECONDS = 10.0  # generous: about 0.5 s on a loaded 2-core box; importing torch alone takes longer


def test_help_is_instant_and_explains(cli):
    """``noisyseg --help`` in a fresh process: lists the commands, never imports torch, and is quick."""
    import os
    import subprocess
    import sys
    import time

    code = ("import sys\nfrom noisyseg.cli.main import main\nsys.argv = ['noisyseg', '--help']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch imported:', 'torch' in sys.modules)")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "COLUMNS": "200"})
    seconds = time.perf_counter() - start
    *help_lines, last = result.stdout.strip().splitlines()
    assert last == "torch imported: False", result.stdout[-300:]
    assert seconds < HELP_SECONDS, f"noisyseg --help took {seconds:.1f} s"
    out = "\n".join(help_lines)
    for command in ("plugins", "corrupt", "train", "predict", "detect", "evaluate", "demo"):
        assert command in out
    assert "theta=auto" not in out  # details live in the command's own help
    assert "strategy" in cli("detect", "--help").out


def test_help_does_not_import_torch():
    """What makes --help instant: the CLI imports torch (about a second) only inside commands."""
    import subprocess
    import sys

    code = ("import sys\nfrom noisyseg.cli.main import main\nsys.argv = ['noisyseg', 'detect', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout[-300:]


def test_ctrl_c_exits_130(cli, shapes, tmp_path, monkeypatch):
    """Defect: typer returns Exit(130) for KeyboardInterrupt and main() dropped it (exit 0)."""
    import noisyseg.pipeline.corrupt as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "corrupt", interrupted)
    result = cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "o")
    assert result.code == 130
    assert result.err.splitlines() == ["error: interrupted; rerun the same command to resume"]


def test_usage_errors_are_one_line(cli, shapes, tmp_path):
    result = cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "o", "--seed", "abc")
    assert_one_line_error(result, "--seed", "--help")
    assert len(result.err.splitlines()) == 1
