import os
import pathlib

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "datasets" / "camvid"

# Developers may load kernels built out of tree (torch.utils.cpp_extension.load) before the
# suite runs: NOISYSEG_DEV_LIBS=/path/a.so:/path/b.so
for _lib in filter(None, os.environ.get("NOISYSEG_DEV_LIBS", "").split(":")):
    torch.ops.load_library(_lib)

os.environ.setdefault("NOISYSEG_DISABLE_PLUGIN_AUTOLOAD", "1")


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    skip_camvid = pytest.mark.skip(reason=f"needs {CAMVID}")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
        if "camvid" in item.keywords and not (CAMVID / "dataset.json").exists():
            item.add_marker(skip_camvid)


@pytest.fixture(scope="session")
def camvid_root():
    if not (CAMVID / "dataset.json").exists():
        pytest.skip(f"needs {CAMVID}")
    return CAMVID


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(monkeypatch, capsys):
    """Runs ``noisyseg ARGS...`` in-process through the console-script entry point."""
    import sys

    from noisyseg.cli.main import main

    def run(*args) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["noisyseg", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """A tiny procedural dataset: splits strong (8) and weak (8) of 48x48 images, 5 classes."""
    from noisyseg.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("shapes") / "data", splits={"strong": 8, "weak": 8}, size=48)


def needs_kernel(op: str):
    """Skips a test (or a parametrised case) when the compiled kernel of ``op`` is not built."""
    from noisyseg.ops import has_op

    return pytest.mark.skipif(not has_op(op), reason=f"{op} kernel not built")


def assert_same_checkpoints(a: dict, b: dict, method: str, rtol: float, atol: float) -> None:
    """Two training checkpoints hold the same student weights (and, for u2pl, the same teacher and
    memory bank) to the given tolerance."""
    import torch

    for part in ("model", "teacher", "bank") if method == "u2pl" else ("model",):
        for key in a[part]:
            torch.testing.assert_close(b[part][key], a[part][key], rtol=rtol, atol=atol)


def assert_one_line_error(result, *fragments):
    """Exit code 2, no traceback, exactly one error line on stderr, containing every fragment.

    (Progress bars may also have written their last state to stderr.)"""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, result.err)


@pytest.fixture(scope="session")
def shapes_chain(shapes, tmp_path_factory):
    """Noisy labels (corrupt, seed 0) and synthetic model probs for both splits of ``shapes``.

    The probs favour the ground truth with a random margin, so some pixels are confidently right,
    some uncertain; no training needed.
    """
    import numpy as np

    from noisyseg.io import Dataset, ProbsDir
    from noisyseg.pipeline.corrupt import corrupt

    root = tmp_path_factory.mktemp("chain")
    ds = Dataset(shapes)
    for split in ("strong", "weak"):
        corrupt(shapes, split, root / "noisy", seed=0)
    probs = ProbsDir(root / "probs")
    rng = np.random.default_rng(0)
    for image_id in ds.ids():
        gt = ds.load_mask(image_id)
        logits = rng.normal(0, 1.0, (ds.num_classes, *gt.shape)).astype(np.float32)
        logits[gt, np.arange(gt.shape[0])[:, None], np.arange(gt.shape[1])] += rng.uniform(0, 5, gt.shape)
        p = np.exp(logits - logits.max(0))
        probs.write(image_id, p / p.sum(0))
    return {"data": shapes, "noisy": root / "noisy", "probs": root / "probs", "root": root}


def camvid_view(camvid_root, tmp_path, ids: list[str], split: str = "few"):
    """A dataset dir that is CamVid's images, masks and dataset.json (symlinked) with one split of ``ids``."""
    view = tmp_path / "data"
    (view / "splits").mkdir(parents=True)
    for name in ("images", "masks", "dataset.json"):
        (view / name).symlink_to(camvid_root / name)
    (view / "splits" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return view
