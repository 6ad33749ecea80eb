"""``noisyseg run PIPELINE.toml``: stages in file order, resume, reruns of what changed, and bad files."""

import json

import pytest

from conftest import assert_one_line_error

TINY = 'model = "deeplabv3plus"\nmodel_params = { width = 8, depth = "1,1,1,1", feature_dim = 16 }\n' \
       'epochs = 1\nbatch_size = 4\ncrop_size = 32\n'


def chain(dataset, detect_params='{ theta = 1.7 }', extra=""):
    return f"""
dataset = "{dataset}"
workspace = "ws"
device = "cpu"

[stages.noisy]
command = "corrupt"
split = ["strong", "weak"]

[stages.clean]
command = "train"
split = "strong"
{TINY}
[stages.preds]
command = "predict"
run = "clean"
split = ["strong", "weak"]
features = true

[stages.cleaned]
command = "detect"
split = "weak"
labels = "noisy"
probs = "preds"
strategy = "small-loss"
params = {detect_params}
scores = true

[stages.corrected]
command = "correct"
split = "weak"
labels = "cleaned"
features = "preds"
strategy = "nearest"

[stages.final]
command = "train"
split = ["strong", "weak"]
labels = {{ weak = "corrected" }}
{TINY}
[stages.report]
command = "report"
split = "weak"
labels = "noisy"
probs = "preds"
cleaned = "cleaned"
scores = "cleaned"
corrected = "corrected"
{extra}"""


def ran(result) -> list[str]:
    return [s["stage"] for s in result["stages"] if s["ran"]]


def test_chain_runs_resumes_and_reruns_what_changed(shapes, tmp_path):
    from noisyseg.pipeline.run import load_pipeline, planned, run_pipeline

    path = tmp_path / "p.toml"
    path.write_text(chain(shapes))
    first = run_pipeline(load_pipeline(path))
    assert ran(first) == ["noisy", "clean", "preds", "cleaned", "corrected", "final", "report"]
    ws = tmp_path / "ws"
    assert (ws / "report" / "index.html").is_file()
    assert json.loads((ws / "final" / "config.json").read_text())["labels"]["weak"] == str((ws / "corrected").resolve())
    rows = {(q["stage"], q["split"]): q for q in first["quality"]}
    assert set(rows) == {("noisy", "strong"), ("noisy", "weak"), ("preds", "strong"), ("preds", "weak"),
                         ("cleaned", "weak"), ("corrected", "weak")}
    assert rows["noisy", "weak"]["coverage"] == 1.0 and rows["cleaned", "weak"]["coverage"] < 1.0
    assert rows["corrected", "weak"]["coverage"] == 1.0
    assert json.loads((ws / "pipeline.json").read_text())["quality"] == first["quality"]

    assert ran(run_pipeline(load_pipeline(path))) == []  # everything finished: nothing runs
    assert first["quality"] == run_pipeline(load_pipeline(path))["quality"]

    # a changed stage reruns from scratch, with what depends on it; what it depends on stays
    path.write_text(chain(shapes, detect_params='{ theta = 1.5 }'))
    assert [p["action"] for p in planned(load_pipeline(path))] == ["skip"] * 3 + ["start over"] * 4
    mtime = (ws / "clean" / "model.pt").stat().st_mtime_ns
    assert ran(run_pipeline(load_pipeline(path))) == ["cleaned", "corrected", "final", "report"]
    assert (ws / "clean" / "model.pt").stat().st_mtime_ns == mtime

    # an interrupted stage resumes (its finished images are kept), the rest of the chain follows
    state_file = ws / ".noisyseg-pipeline.json"
    state = json.loads(state_file.read_text())
    state["corrected"]["finished"] = False
    state_file.write_text(json.dumps(state))
    assert [p["action"] for p in planned(load_pipeline(path))][4] == "resume"
    assert ran(run_pipeline(load_pipeline(path))) == ["corrected"]


def test_cli_run_prints_the_quality_table_and_check_runs_nothing(shapes, tmp_path, cli):
    path = tmp_path / "p.toml"
    path.write_text(chain(shapes))
    checked = cli("run", path, "--check")
    assert checked.code == 0, checked.err
    assert "cleaned" in checked.out and not (tmp_path / "ws").exists()
    result = cli("run", path, "--workspace", tmp_path / "elsewhere")
    assert result.code == 0, result.err
    assert "label quality per stage" in result.out and "corrected" in result.out
    assert (tmp_path / "elsewhere" / "corrected" / "report.json").is_file()


@pytest.mark.parametrize("edit, fragments", [
    (("", "[stages.x]\ncommand = 'frobnicate'\nsplit = 'weak'\n"), ["stage 'x' key 'command'", "frobnicate"]),
    (("scores = true", "scores = true\nthreshold = 3"), ["stage 'cleaned' key 'threshold'", "spare_blind"]),
    (('strategy = "small-loss"', 'strategy = "smal-loss"'), ["stage 'cleaned'", "smal-loss", "small-loss"]),
    (("{ theta = 1.7 }", "{ theta = 1.7, tehta = 2 }"), ["stage 'cleaned'", "tehta"]),
    (('labels = "cleaned"', 'labels = "final"'), ["stage 'corrected' key 'labels'", "declared below"]),
    (('labels = "cleaned"', 'labels = "nowhere/"'), ["stage 'corrected' key 'labels'", "'nowhere/'"]),
    (('labels = "cleaned"', 'labels = "clean"'), ["stage 'corrected' key 'labels'", "a train stage"]),
    (("features = true", "features = false"), ["stage 'corrected' key 'features'", "without features = true"]),
    (('split = "weak"\nlabels = "noisy"', 'split = "wek"\nlabels = "noisy"'), ["stage 'cleaned' key 'split'", "'wek'"]),
    (("epochs = 1", "epochs = 'one'"), ["stage 'clean' key 'epochs'", "an integer"]),
    (("features = true", "features = true\nscales = [1, 'big']"), ["stage 'preds' key 'scales'", "a list of numbers"]),
    (("epochs = 1", "epochs = 1\nclass_balance = 'mean'"), ["stage 'clean'", "class_balance", "median"]),
    (("[stages.noisy]", "[stages.noisy\n"), ["p.toml", "invalid TOML"]),
    (('split = ["strong", "weak"]\n\n[stages.clean]', 'split = ["strong", "weak"]\ntarget_rate = 0.2\n\n[stages.clean]'),
     ["stage 'noisy'", "target_rate", "one split per corrupt stage"]),
    (('split = ["strong", "weak"]\n\n[stages.clean]', 'split = ["strong", "weak"]\ntarget_rate = "high"\n\n[stages.clean]'),
     ["stage 'noisy'", "target_rate", "(0, 1)", "high"]),
])
def test_bad_pipeline_files_fail_before_any_work(shapes, tmp_path, cli, edit, fragments):
    old, new = edit
    text = chain(shapes, extra=new) if not old else chain(shapes).replace(old, new, 1)
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert_one_line_error(cli("run", path), str(path) if "p.toml" not in fragments else "p.toml", *fragments)
    assert not (tmp_path / "ws").exists()


def test_missing_dataset_and_file(tmp_path, cli):
    assert_one_line_error(cli("run", tmp_path / "none.toml"), "none.toml", "no such file")
    path = tmp_path / "p.toml"
    path.write_text('dataset = "nothing"\n[stages.a]\ncommand = "corrupt"\nsplit = "weak"\n')
    assert_one_line_error(cli("run", path), "nothing")


def test_demo_pipeline_file_is_valid_and_shipped(tmp_path):
    from noisyseg.pipeline.demo import DEMO_PIPELINE, DEMO_SPLITS
    from noisyseg.pipeline.run import load_pipeline
    from noisyseg.synthetic import make_dataset

    root = make_dataset(tmp_path / "shapes", splits={k: 2 for k in DEMO_SPLITS}, size=16)
    p = load_pipeline(DEMO_PIPELINE, dataset=root, workspace=tmp_path / "ws")
    assert [s.name for s in p.stages][:6] == ["noisy", "clean", "preds", "cleaned", "corrected", "final"]


def test_set_overrides_a_key_before_the_checks(shapes, tmp_path, cli):
    from noisyseg.pipeline.run import load_pipeline

    path = tmp_path / "p.toml"
    path.write_text(chain(shapes))
    p = load_pipeline(path, overrides=["stages.clean.epochs=3", "stages.cleaned.params.theta=0.5", "workspace=w2"])
    stages = {s.name: s for s in p.stages}
    assert stages["clean"].values["epochs"] == 3 and stages["cleaned"].values["params"]["theta"] == 0.5
    assert p.workspace == tmp_path / "w2"
    assert_one_line_error(cli("run", path, "--check", "--set", "stages.clean.epochs=three"),
                          "stage 'clean' key 'epochs'", "an integer", "'three'")
    assert_one_line_error(cli("run", path, "--check", "--set", "stages.clean"), "--set stages.clean", "KEY=VALUE")


def test_predict_stage_takes_test_time_augmentation(shapes, tmp_path):
    from noisyseg.pipeline.run import load_pipeline

    path = tmp_path / "p.toml"
    path.write_text(chain(shapes).replace("features = true", "features = true\nflip = true\nscales = [0.75, 1]", 1))
    preds = {s.name: s for s in load_pipeline(path).stages}["preds"]
    assert preds.values["flip"] is True and preds.values["scales"] == (0.75, 1.0)


def test_train_stage_with_one_label_dir_for_every_split(shapes, tmp_path):
    from noisyseg.pipeline.run import load_pipeline, run_pipeline

    path = tmp_path / "p.toml"
    path.write_text(f'dataset = "{shapes}"\n[stages.noisy]\ncommand = "corrupt"\nsplit = ["strong", "weak"]\n'
                    f'[stages.m]\ncommand = "train"\nsplit = ["strong", "weak"]\nlabels = "noisy"\n{TINY}')
    run_pipeline(load_pipeline(path))
    config = json.loads((tmp_path / "p" / "m" / "config.json").read_text())
    assert config["labels"] == str((tmp_path / "p" / "noisy").resolve())


def test_only_runs_a_stage_and_what_it_reads_until_stops_after_one(shapes, tmp_path, cli):
    from noisyseg.pipeline.run import load_pipeline, planned, run_pipeline, select

    path = tmp_path / "p.toml"
    path.write_text(chain(shapes))
    p = load_pipeline(path)
    assert [s.name for s in select(p, until="preds").stages] == ["noisy", "clean", "preds"]
    # corrected reads cleaned, which reads noisy and preds, which reads clean; final and report are not needed
    assert [s.name for s in select(p, only=["corrected"]).stages] == ["noisy", "clean", "preds", "cleaned", "corrected"]
    assert [s.name for s in select(p, only=["noisy", "clean"]).stages] == ["noisy", "clean"]
    assert ran(run_pipeline(select(p, until="clean"))) == ["noisy", "clean"]
    ws = tmp_path / "ws"
    assert not (ws / "preds").exists()
    assert ran(run_pipeline(select(p, only=["cleaned"]))) == ["preds", "cleaned"]
    assert [a["action"] for a in planned(p)] == ["skip"] * 4 + ["run"] * 3

    result = cli("run", path, "--only", "corrected", "--check")
    assert result.code == 0 and "corrected" in result.out and "final" not in result.out, result.err
    assert_one_line_error(cli("run", path, "--only", "corected"), "--only", str(path), "cleaned", "'corected'")
    assert_one_line_error(cli("run", path, "--until", "fnal"), "--until", "'fnal'")
    assert_one_line_error(cli("run", path, "--only", "clean", "--until", "preds"), "--only and --until")
    assert not (ws / "corrected").exists()
