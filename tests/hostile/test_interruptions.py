"""Interruptions and --force: kill -9 and Ctrl-C (SIGINT) at a chosen point of a real process, then
the rerun a user would type. Outputs must end byte-identical to an uninterrupted run, or the rerun
must be refused; Ctrl-C must exit 130; no temp file may survive a rerun; after --force no file of
the replaced run may ever be taken for a finished one.

The processes signal themselves: a driver counts the files renamed into place (run marker and
record of finished files included) and sends the signal after the N-th, or just before it with
``:before`` (the temp file is then complete but never renamed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import os, signal, sys
name, count, *when = os.environ["NOISYSEG_TEST_SIGNAL"].split(":")
sig, count, before = getattr(signal, name), int(count), when == ["before"]
# a terminal's Ctrl-C reaches Python's KeyboardInterrupt handler; a process started from a
# background job inherits SIGINT ignored, which Python then keeps, so restore the handler
signal.signal(signal.SIGINT, signal.default_int_handler)
real_replace, seen = os.replace, [0]
def replace(src, dst):
    seen[0] += 1
    if seen[0] == count and before:
        os.kill(os.getpid(), sig)
    real_replace(src, dst)
    if seen[0] == count and not before:
        os.kill(os.getpid(), sig)
os.replace = replace
sys.argv = ["noisyseg", *sys.argv[1:]]
from noisyseg.cli.main import main
main()
"""


def signalled(signal_at: str, *args) -> subprocess.CompletedProcess:
    """Runs ``noisyseg ARGS`` in a fresh process that gets ``SIGNAL:N[:before]``."""
    env = dict(os.environ, NOISYSEG_TEST_SIGNAL=signal_at, NOISYSEG_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", DRIVER, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=120)


def files(root: Path) -> dict[str, bytes]:
    """Every output file (run bookkeeping and reports aside) with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and not p.name.startswith("report")}


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*.tmp")]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Six 32x32 images per split, noisy labels, synthetic probs and a tiny trained run."""
    from noisyseg.io import Dataset, ProbsDir
    from noisyseg.pipeline.corrupt import corrupt
    from noisyseg.synthetic import make_dataset
    from noisyseg.train.supervised import TrainConfig, train

    root = tmp_path_factory.mktemp("interrupt")
    data = make_dataset(root / "data", splits={"strong": 6, "weak": 6}, size=32)
    ds = Dataset(data)
    for split in ("strong", "weak"):
        corrupt(data, split, root / "noisy", seed=0)
    rng = np.random.default_rng(1)
    probs = ProbsDir(root / "probs")
    for image_id in ds.ids():
        gt = ds.load_mask(image_id)
        logits = rng.normal(0, 1, (ds.num_classes, 32, 32)).astype(np.float32)
        logits[gt, np.arange(32)[:, None], np.arange(32)] += rng.uniform(0, 4, gt.shape)
        p = np.exp(logits - logits.max(0))
        probs.write(image_id, p / p.sum(0))
    train(TrainConfig(dataset=str(data), split="strong", out=str(root / "run"), model="deeplabv3plus", epochs=1, batch_size=3, crop_size=16,
                      model_params={"width": "4", "depth": "1,1,1,1", "feature_dim": "8"}, device="cpu"))
    return {"data": data, "noisy": root / "noisy", "probs": root / "probs", "run": root / "run"}


def commands(c: dict, out: Path) -> dict[str, list]:
    return {
        "corrupt": ["corrupt", c["data"], "--split", "weak", "--seed", "3", "--out", out],
        "detect": ["detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                   "--strategy", "entropy", "--scores", "--batch-size", "2", "--device", "cpu", "--out", out],
        "predict": ["predict", c["run"], c["data"], "--split", "weak", "--features", "--batch-size", "1",
                    "--device", "cpu", "--out", out],
    }


@pytest.mark.parametrize("command", ["corrupt", "detect", "predict"])
def test_kill_9_mid_write_then_rerun_is_byte_identical(command, chain, cli, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert cli(*commands(chain, clean)[command]).code == 0
    # Files 1 and 2 are the run marker and the record of finished files; 5 is an output half-way.
    result = signalled("SIGKILL:5:before", *commands(chain, killed)[command])
    assert result.returncode == -9, result.stderr
    assert temp_files(killed) and not (killed / "report.json").exists()
    rerun = cli(*commands(chain, killed)[command])
    assert rerun.code == 0, rerun
    assert files(killed) == files(clean) and not temp_files(killed)


def test_ctrl_c_exits_130_and_the_rerun_resumes(chain, cli, tmp_path):
    clean, out = tmp_path / "clean", tmp_path / "out"
    assert cli(*commands(chain, clean)["corrupt"]).code == 0
    result = signalled("SIGINT:4", *commands(chain, out)["corrupt"])
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines() == ["error: interrupted; rerun the same command to resume"]
    assert not (out / "report.json").exists() and not temp_files(out)
    rerun = cli(*commands(chain, out)["corrupt"], "--json")
    assert rerun.code == 0 and '"images": 6' in rerun.out
    assert files(out) == files(clean)


def test_ctrl_c_before_any_output_leaves_nothing(chain, tmp_path):
    out = tmp_path / "out"
    result = signalled("SIGINT:2", *commands(chain, out)["detect"])  # just after claiming the directory
    assert result.returncode == 130, result.stderr
    assert not out.exists()


def _detect(c, split: str, alpha: float, out: Path) -> list:
    return ["detect", c["data"], "--split", split, "--labels", c["noisy"], "--probs", c["probs"], "--strategy", "entropy",
            "-p", f"alpha={alpha}", "--device", "cpu", "--out", out]


def _clean_run(cli, c, split: str, alpha: float, out: Path) -> dict[str, bytes]:
    assert cli(*_detect(c, split, alpha, out)).code == 0
    return files(out)


def test_force_then_resume_never_keeps_stale_files(chain, cli, tmp_path):
    """detect weak a=0.2 X; detect strong a=0.6 X --force; detect weak a=0.6 X: every weak file is
    the a=0.6 one, and X holds no file of the a=0.2 run in between."""
    expected = _clean_run(cli, chain, "weak", 0.6, tmp_path / "reference")
    out = tmp_path / "X"
    assert cli(*_detect(chain, "weak", 0.2, out)).code == 0
    assert cli(*_detect(chain, "strong", 0.6, out), "--force").code == 0
    assert not any(name.startswith("weak") for name in files(out))  # --force removed the a=0.2 outputs
    result = cli(*_detect(chain, "weak", 0.6, out), "--json")
    assert result.code == 0 and '"skipped": 0' in result.out
    assert {k: v for k, v in files(out).items() if k.startswith("weak")} == expected


@pytest.mark.parametrize("signal_at", ["SIGKILL:1", "SIGKILL:4", "SIGINT:4"])
def test_interrupted_force_run_then_rerun_without_force(signal_at, chain, cli, tmp_path):
    """A --force run with new parameters stopped (just after it rewrote the run marker, or part-way
    through its images), then the rerun the error message suggests: no file of the replaced run
    survives, the outputs are those of a clean run, and the replaced parameters are refused."""
    from conftest import assert_one_line_error

    expected = _clean_run(cli, chain, "weak", 0.6, tmp_path / "reference")
    out = tmp_path / "X"
    assert cli(*_detect(chain, "weak", 0.2, out)).code == 0
    result = signalled(signal_at, *_detect(chain, "weak", 0.6, out), "--force")
    assert result.returncode in (-9, 130), result.stderr
    assert_one_line_error(cli(*_detect(chain, "weak", 0.2, out)), str(out), "other parameters")
    rerun = cli(*_detect(chain, "weak", 0.6, out))
    assert rerun.code == 0, rerun
    assert files(out) == expected


def test_force_on_a_foreign_directory_keeps_its_files_and_trusts_none(chain, cli, tmp_path):
    """--force over files noisyseg did not write leaves them, but never takes one for finished."""
    out = tmp_path / "X"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    shutil.copy(chain["noisy"] / "weak_0000.png", out / "weak_0000.png")  # looks like an output, is not one
    expected = _clean_run(cli, chain, "weak", 0.6, tmp_path / "reference")
    result = signalled("SIGKILL:1", *_detect(chain, "weak", 0.6, out), "--force")  # marker written, nothing else
    assert result.returncode == -9
    assert cli(*_detect(chain, "weak", 0.6, out)).code == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert {k: v for k, v in files(out).items() if k != "notes.txt"} == expected
