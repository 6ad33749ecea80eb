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
