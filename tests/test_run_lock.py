"""Two processes never train into one run directory at once."""

import pytest

from noisyseg.errors import NoisySegError
from noisyseg.io.lock import LOCK_FILE, has_files, locked
from noisyseg.train.supervised import TrainConfig, train

TINY = {"width": "8", "depth": "1,1,1,1", "feature_dim": "16"}


def _cfg(shapes, out):
    return TrainConfig(dataset=str(shapes), split="strong", out=str(out), model="deeplabv3plus", model_params=TINY, epochs=1,
                       batch_size=4, crop_size=32, device="cpu")


def test_lock_is_exclusive_and_released(tmp_path):
    with locked(tmp_path / "run", "noisyseg train"):
        assert (tmp_path / "run" / LOCK_FILE).is_file() and not has_files(tmp_path / "run")
        with pytest.raises(NoisySegError, match="another 'noisyseg train' running"):
            with locked(tmp_path / "run", "noisyseg train"):
                pass
    with pytest.raises(RuntimeError):
        with locked(tmp_path / "run", "noisyseg train"):
            raise RuntimeError("interrupted")
    with locked(tmp_path / "run", "noisyseg train"):  # released by the exception
        pass


def test_train_refuses_a_run_in_progress_then_resumes(cli, shapes, tmp_path):
    from conftest import assert_one_line_error

    run = tmp_path / "run"
    with locked(run, "noisyseg train"):  # another process's run, as the kernel sees it
        with pytest.raises(NoisySegError, match=str(run)):
            train(_cfg(shapes, run))
        result = cli("train", shapes, "--split", "strong", "--out", run, "--epochs", "1", "--device", "cpu")
        assert_one_line_error(result, str(run), "another 'noisyseg train' running")
        assert not (run / "checkpoint.pt").exists()
    assert train(_cfg(shapes, run))["epochs"] == 1  # a directory holding only the lock is a new run
    assert train(_cfg(shapes, run))["resumed_from_epoch"] == 1
