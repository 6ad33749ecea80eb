"""The third-party door: install plugins/noisyseg-example for real and drive it through the CLI."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
           str(ROOT / "plugins" / "noisyseg-example")]
    subprocess.run(cmd, check=True, capture_output=True)
    return target


def _noisyseg(site, *args, autoload=True):
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    env.pop("NOISYSEG_DISABLE_PLUGIN_AUTOLOAD", None)
    if not autoload:
        env["NOISYSEG_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run([sys.executable, "-m", "noisyseg.cli.main", *map(str, args)], env=env,
                          capture_output=True, text=True)


def test_entry_point_plugin_is_listed(installed):
    result = _noisyseg(installed, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    entry = next(e for e in json.loads(result.stdout) if e["name"] == "margin")
    assert entry["kind"] == "detection"
    assert entry["plugin"] == "noisyseg-example" and entry["version"] == "0.1.0"
    assert [p["name"] for p in entry["params"]] == ["margin"]


def test_autoload_can_be_disabled(installed):
    result = _noisyseg(installed, "plugins", "--json", autoload=False)
    assert "margin" not in {e["name"] for e in json.loads(result.stdout)}


def test_plugin_strategy_runs_through_detect(installed, shapes_chain, tmp_path):
    c = shapes_chain
    out = tmp_path / "cleaned"
    result = _noisyseg(installed, "detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                       "--strategy", "margin", "-p", "margin=0.3", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["strategy"] == "margin" and report["params"] == {"margin": 0.3}
    assert 0 < report["flagged_share"] < 1
    assert report["detection_quality"]["precision"] > report["detection_quality"]["noise_rate"]
    bad = _noisyseg(installed, "detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                    "--strategy", "margin", "-p", "margin=2", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "margin" in bad.stderr and "Traceback" not in bad.stderr
