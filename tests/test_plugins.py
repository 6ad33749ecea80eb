import json

import pytest

from noisyseg import plugins
from noisyseg.errors import NoisySegError, UnknownModelError, UnknownStrategyError
from noisyseg.hookspecs import hookimpl
from noisyseg.strategies.detection import Detection, Detector
from noisyseg.strategies.spec import Param, StrategySpec


class _Everything(Detector):
    def __init__(self, unused: int = 1):
        self.unused = unused

    def detect(self, probs, labels):
        return Detection(labels != 255, probs[:, 0].float())


class _TestPlugin:
    __version__ = "9.9"

    @hookimpl
    def noisyseg_strategies(self):
        return [StrategySpec("detection", "flag-all", "flags every pixel", _Everything,
                             (Param("unused", int, 1, min=0),))]


def test_builtins_register_through_hooks():
    names = {(p.spec.kind, p.spec.name): p for p in plugins.list_strategies()}
    for key in [("detection", "small-loss"), ("detection", "entropy"), ("detection", "confident")]:
        assert key in names
        assert names[key].plugin == "noisyseg"
    assert "deeplabv3plus" in [p.spec.name for p in plugins.list_models()]


def test_unknown_strategy_lists_known_names():
    with pytest.raises(UnknownStrategyError) as info:
        plugins.get_strategy("detection", "nope")
    message = str(info.value)
    assert "unknown detection strategy 'nope'" in message
    for name in ("small-loss", "entropy", "confident"):
        assert name in message


def test_unknown_model_lists_known_models():
    with pytest.raises(UnknownModelError) as info:
        plugins.get_model("unet")
    known = sorted(p.spec.name for p in plugins.list_models())
    assert str(info.value) == f"unknown model 'unet' (known: {', '.join(known)})"
    assert "deeplabv3plus" in known and "strategy" not in str(info.value)
    assert isinstance(info.value, UnknownStrategyError)  # callers catching the old error still do
    assert info.value.kind == "model" and info.value.name == "unet" and info.value.exit_code == 2


def test_runtime_registration_and_duplicates():
    plugin = _TestPlugin()
    plugins.register(plugin, name="test-plugin")
    try:
        spec = plugins.get_strategy("detection", "flag-all")
        provided = [p for p in plugins.list_strategies("detection") if p.spec.name == "flag-all"][0]
        assert provided.plugin == "test-plugin" and provided.version == "9.9"
        assert spec.build({"unused": "3"}).unused == 3
        twin = _TestPlugin()
        plugins.register(twin, name="twin")
        try:
            with pytest.raises(NoisySegError, match="already registered by test-plugin"):
                plugins.list_strategies()
        finally:
            plugins.unregister(twin)
    finally:
        plugins.unregister(plugin)
    with pytest.raises(UnknownStrategyError):
        plugins.get_strategy("detection", "flag-all")


def test_plugins_command_json(cli):
    result = cli("plugins", "--json")
    assert result.code == 0, result
    entries = json.loads(result.out)
    small = next(e for e in entries if e["name"] == "small-loss")
    assert small["kind"] == "detection" and small["plugin"] == "noisyseg"
    assert {p["name"] for p in small["params"]} == {"theta", "calibrate_split", "target_precision", "confidence",
                                                 "window"}
    assert any(e["kind"] == "model" for e in entries)


def test_plugins_command_table(cli):
    result = cli("plugins")
    assert result.code == 0
    assert "small-loss" in result.out and "target_precision" in result.out


def test_plugins_command_fits_80_columns():
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80", "NOISYSEG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    listing = subprocess.run([sys.executable, "-m", "noisyseg.cli.main", "plugins"], capture_output=True, text=True,
                             env=env, check=True).stdout
    assert max(len(line) for line in listing.splitlines()) <= 80
    assert "small-loss" in listing and "-p theta, calibrate_split, target_precision, confidence, window" in listing
    detail = subprocess.run([sys.executable, "-m", "noisyseg.cli.main", "plugins", "small-loss"], capture_output=True,
                            text=True, env=env, check=True).stdout
    assert max(len(line) for line in detail.splitlines()) <= 80
    assert "target_precision" in detail and "0.97" in detail and "kept-label precision" in detail
    assert "window" in detail and "odd" in detail and "gat" not in detail


def test_plugins_command_unknown_name(cli):
    from conftest import assert_one_line_error

    result = cli("plugins", "nope")
    assert_one_line_error(result, "found 'nope'", "small-loss", "efficientnet-lite0")
    json_one = json.loads(cli("plugins", "gat", "--json").out)
    assert [e["name"] for e in json_one] == ["gat"] and json_one[0]["kind"] == "correction"


def _site_with_plugin(root, name: str, source: str):
    """A directory that makes ``name`` an installed distribution with a ``noisyseg`` entry point."""
    site = root / "site"
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[noisyseg]\n{name} = {name}_plugin\n")
    (site / f"{name}_plugin.py").write_text(source)
    return site


def _noisyseg_with(site, *args, **env):
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(site)]), COLUMNS="200", **env)
    if "NOISYSEG_DISABLE_PLUGIN_AUTOLOAD" not in env:
        full.pop("NOISYSEG_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run([sys.executable, "-m", "noisyseg.cli.main", *map(str, args)], env=full,
                          capture_output=True, text=True, timeout=120)


def test_a_broken_plugin_is_named_once_and_skipped(tmp_path, shapes_chain):
    site = _site_with_plugin(tmp_path, "brokenthing", "import no_such_module_anywhere\n")
    listed = _noisyseg_with(site, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines() == [
        "warning: plugin 'brokenthing' failed to load (brokenthing_plugin): ModuleNotFoundError: No module named "
        "'no_such_module_anywhere'; skipped (set NOISYSEG_DISABLE_PLUGIN_AUTOLOAD=1 to load no plugins)"]
    assert any(e["name"] == "small-loss" for e in json.loads(listed.stdout))
    c = shapes_chain
    detected = _noisyseg_with(site, "detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                              "--strategy", "entropy", "--out", tmp_path / "o")
    assert detected.returncode == 0 and detected.stderr.splitlines() == listed.stderr.splitlines()
    for spelling in ("1", "true", "YES", " On "):
        quiet = _noisyseg_with(site, "plugins", "--json", NOISYSEG_DISABLE_PLUGIN_AUTOLOAD=spelling)
        assert quiet.returncode == 0 and quiet.stderr == "", (spelling, quiet.stderr)


def test_autoload_switch_spellings(monkeypatch):
    for value, disabled in (("1", True), ("TRUE", True), ("yes", True), ("on", True), ("0", False), ("", False),
                            ("no", False)):
        monkeypatch.setenv("NOISYSEG_DISABLE_PLUGIN_AUTOLOAD", value)
        assert plugins.autoload_disabled() is disabled, value


class _FailingPlugin:
    @hookimpl
    def noisyseg_strategies(self):
        raise RuntimeError("cannot find my weights")


def test_a_plugin_whose_hook_fails_is_skipped_with_a_warning():
    failing = _FailingPlugin()
    plugins.register(failing, name="failing-plugin")
    try:
        with pytest.warns(plugins.PluginWarning, match="plugin 'failing-plugin' failed in noisyseg_strategies: "
                                                       "RuntimeError: cannot find my weights; skipped"):
            names = [p.spec.name for p in plugins.list_strategies()]
        assert "small-loss" in names
    finally:
        plugins.unregister(failing)


def test_each_strategy_module_is_named_after_the_one_strategy_it_registers():
    """noisyseg/strategies/<kind>/<name>.py registers the strategy <name> (dashes as underscores) and
    no other; the kind's SPECS is exactly its modules' SPECs. Helper modules register nothing."""
    import importlib
    from pathlib import Path

    import noisyseg.strategies as strategies

    root = Path(strategies.__file__).parent
    kinds = {"detection": "detection", "correction": "correction", "pseudo_labeling": "pseudo-labeling",
             "weighting": "weighting"}
    assert sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file()) == sorted(kinds)
    for package, kind in kinds.items():
        defined = []
        for path in sorted((root / package).glob("*.py")):
            if path.stem == "__init__":
                continue
            module = importlib.import_module(f"noisyseg.strategies.{package}.{path.stem}")
            specs = [v for v in vars(module).values() if isinstance(v, StrategySpec)]
            assert len(specs) <= 1, (path, [s.name for s in specs])
            if specs:
                spec = specs[0]
                assert module.SPEC is spec and spec.kind == kind, path
                assert spec.name.replace("-", "_") == path.stem, f"{path.name} registers '{spec.name}'"
                defined.append(spec)
        registered = importlib.import_module(f"noisyseg.strategies.{package}").SPECS
        assert sorted(s.name for s in registered) == sorted(s.name for s in defined), package
        assert all(any(s is d for d in defined) for s in registered), package
