"""``noisyseg run PIPELINE.toml``: a whole chain from one declarative file, resumable stage by stage.

```toml
dataset = "../data"            # relative to this file
workspace = "work"             # default: <file's dir>/<file's stem>; every stage writes WORKSPACE/<stage>
device = "auto"

[stages.clean]                 # stages run in file order; a stage's name is its output dir
command = "train"              # corrupt, train, predict, detect, correct, pseudo-label, weight, report
split = "strong"               # a split or a list of splits
epochs = 30

[stages.preds]
command = "predict"
run = "clean"                  # a directory key names an earlier stage (its output of that kind) or a path
split = ["strong", "weak"]
features = true

[stages.cleaned]
command = "detect"
split = "weak"
labels = "noisy/"              # a path: relative to this file
probs = "preds"                # -> WORKSPACE/preds/probs
strategy = "small-loss"
params = { theta = "auto", calibrate_split = "strong" }
```

The whole file is checked before any work: unknown stages, commands, keys, strategies or strategy
parameters, references to stages not declared above (or that do not make what is asked of them:
``features`` of a predict stage without ``features = true``) and missing paths are one line naming
the file, the stage and key, what was expected and what was found.

Each stage's fingerprint hashes its command, splits and values, with a referenced stage standing
for its own fingerprint, so a stage is rerun from scratch when it or anything it depends on
changed, resumed when it was interrupted, and skipped when it finished with the same fingerprint
(``WORKSPACE/.noisyseg-pipeline.json`` records them). The run ends with one table of label quality
per stage and split where the dataset has ground truth (labels for corrupt, detect, correct and
pseudo-label stages; the argmax of predict stages), also written to ``WORKSPACE/pipeline.json``.
``select`` cuts a pipeline to some stages (``noisyseg run --only/--until``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from noisyseg.errors import InputError, NoisySegError, ParameterError
from noisyseg.io import Dataset
from noisyseg.io.atomic import write_json
from noisyseg.io.jsonfile import read_json
from noisyseg.pipeline.common import Track, no_track
from noisyseg.pipeline.stages import PROVIDES, Command, command, run_stage

TOP_KEYS = ("dataset", "workspace", "device", "stages")
STATE_FILE = ".noisyseg-pipeline.json"
LABEL_STAGES = ("corrupt", "detect", "correct", "pseudo-label")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Ref:
    """A directory key's value that names an earlier stage: its output dir, then ``sub``."""

    stage: str
    sub: str


@dataclass
class Stage:
    name: str
    cmd: Command
    splits: list[str]
    values: dict[str, Any]   # plain values, strategy params, Ref or Path (dicts of them for train's labels)
    fingerprint: str = ""


@dataclass
class Pipeline:
    path: Path
    dataset: Path
    workspace: Path
    device: str
    stages: list[Stage]

    def out(self, stage: str) -> Path:
        return self.workspace / stage

    def resolve(self, value: Any) -> Any:
        """A stage value with references made into paths (as strings, which every runner takes)."""
        if isinstance(value, Ref):
            return str(self.out(value.stage) / value.sub if value.sub else self.out(value.stage))
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict) and any(isinstance(v, (Ref, Path)) for v in value.values()):
            return {k: self.resolve(v) for k, v in value.items()}
        return value


class _Checker:
    """Builds errors that name the file, the stage and the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, expected: str, found: str) -> InputError:
        return InputError(f"{self.path}: {where}", expected, found)


def load_pipeline(path: str | Path, dataset: str | Path | None = None, workspace: str | Path | None = None,
                  device: str | None = None, overrides: list[str] | None = None) -> Pipeline:
    """Reads and checks a pipeline file (see the module's docstring); ``dataset``, ``workspace``
    and ``device`` override the file's, and each of ``overrides`` (``stages.clean.epochs=50``: a
    dotted key, then a TOML value or a bare string) sets one key before anything is checked."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "a pipeline file (TOML)", "no such file")
    check = _Checker(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, "a pipeline file in TOML", f"invalid TOML ({e})") from None
    for item in overrides or []:
        _override(doc, item)
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise check.fail(f"key '{unknown[0]}'", f"one of {', '.join(TOP_KEYS)} at the top level", f"'{unknown[0]}'")
    base = path.parent
    if dataset is None:
        if not isinstance(doc.get("dataset"), str):
            raise check.fail("key 'dataset'", "the dataset directory (a string)", repr(doc.get("dataset", "none")))
        dataset = base / doc["dataset"]
    ds = Dataset(dataset)
    if workspace is None:
        workspace = base / doc["workspace"] if isinstance(doc.get("workspace"), str) else base / path.stem
    device = device or doc.get("device", "auto")
    if not isinstance(device, str):
        raise check.fail("key 'device'", "auto, cpu or cuda", repr(device))
    stages_doc = doc.get("stages")
    if not isinstance(stages_doc, dict) or not stages_doc:
        raise check.fail("key 'stages'", "at least one [stages.NAME] table", repr(stages_doc or "none"))
    stages: list[Stage] = []
    for name, body in stages_doc.items():
        stages.append(_stage(check, ds, base, name, body, {s.name: s for s in stages}, list(stages_doc)))
    pipeline = Pipeline(path, Path(dataset), Path(workspace), device, stages)
    for stage in stages:
        stage.fingerprint = _fingerprint(pipeline, stage, {s.name: s.fingerprint for s in stages if s.fingerprint})
    return pipeline


def _override(doc: dict, item: str) -> None:
    """Sets ``a.b.c=VALUE`` in ``doc``; VALUE is read as TOML (``50``, ``true``, ``[1, 2]``, ``"x"``)
    or else taken as a string."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ParameterError(f"--set {item}: expected KEY=VALUE with a dotted KEY (stages.NAME.KEY=VALUE)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ParameterError(f"--set {item}: expected '{part}' to be a table, found {node!r}")
    node[parts[-1]] = value


def _stage(check: _Checker, ds: Dataset, base: Path, name: str, body: Any, earlier: dict[str, Stage],
           every: list[str]) -> Stage:
    where = f"stage '{name}'"
    if not _NAME.match(name):
        raise check.fail(where, "a stage name of letters, digits, '.', '_' or '-' (it names a directory)", repr(name))
    if not isinstance(body, dict):
        raise check.fail(where, "a table of keys", repr(body))
    kind = body.get("command")
    if kind not in PROVIDES:
        raise check.fail(f"{where} key 'command'", f"one of {', '.join(PROVIDES)}", repr(kind or "none"))
    cmd = command(kind)
    splits = body.get("split")
    splits = [splits] if isinstance(splits, str) else splits
    if not isinstance(splits, list) or not splits or not all(isinstance(s, str) for s in splits):
        raise check.fail(f"{where} key 'split'", "a split name or a list of them", repr(body.get("split", "none")))
    for split in splits:
        if split not in ds.splits():
            raise check.fail(f"{where} key 'split'", f"a split of {ds.root} ({', '.join(ds.splits())})", repr(split))
    values: dict[str, Any] = {}
    for key, value in body.items():
        at = f"{where} key '{key}'"
        if key in ("command", "split"):
            continue
        if key in cmd.refs:
            values[key] = _reference(check, at, base, value, cmd.refs[key], earlier, every, splits if kind == "train" else None)
        elif key == "strategy" and cmd.strategy_kind:
            values[key] = value
        elif key == "params" and cmd.strategy_kind:
            if not isinstance(value, dict):
                raise check.fail(at, "a table of strategy parameters", repr(value))
            values[key] = value
        elif key in cmd.options:
            values[key] = _typed(check, at, value, cmd.options[key])
        else:
            known = ["command", "split", *cmd.refs, *(("strategy", "params") if cmd.strategy_kind else ()), *cmd.options]
            raise check.fail(f"{where} key '{key}'", f"a key of a {kind} stage ({', '.join(known)})", repr(key))
    for key in cmd.required:
        if key not in values:
            raise check.fail(where, f"key '{key}' (a {kind} stage needs it)", "none")
    try:
        _check_values(cmd, ds, splits, values)
    except NoisySegError as e:
        raise ParameterError(f"{check.path}: {where}: {e}") from None
    return Stage(name, cmd, splits, values)


def _check_values(cmd: Command, ds: Dataset, splits: list[str], values: dict[str, Any]) -> None:
    """What the stage's runner would refuse, found before any stage runs."""
    from noisyseg.plugins import get_strategy

    if cmd.strategy_kind:
        get_strategy(cmd.strategy_kind, values["strategy"]).resolve(values.get("params"))
    if cmd.name == "corrupt" and values.get("target_rate") is not None:
        rate = values["target_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise ParameterError(f"target_rate: expected a number in (0, 1), found {rate}")
        if len(splits) > 1:  # each split's search picks its own strength, and one dir holds one run's
            raise ParameterError(f"target_rate: expected one split per corrupt stage (each split gets its own "
                                 f"strength; declare one stage per split), found {', '.join(splits)}")
    if cmd.name == "train":
        from noisyseg.pipeline.train import train_config

        train_config(str(ds.root), splits, "-", **{k: (str(v) if isinstance(v, (Ref, Path)) else v)
                                                    for k, v in values.items()})
        for key in ("unlabelled", "val_split"):
            if values.get(key) and values[key] not in ds.splits():
                raise ParameterError(f"{key}: expected a split of {ds.root} ({', '.join(ds.splits())}), "
                                     f"found '{values[key]}'")


def _reference(check: _Checker, at: str, base: Path, value: Any, artifact: str, earlier: dict[str, Stage],
               every: list[str], splits: list[str] | None) -> Any:
    if isinstance(value, dict) and splits is not None:  # train: {split = ref}
        for split in value:
            if split not in splits:
                raise check.fail(at, f"a table keyed by the stage's splits ({', '.join(splits)})", repr(split))
        return {split: _reference(check, f"{at}.{split}", base, v, artifact, earlier, every, None)
                for split, v in value.items()}
    if not isinstance(value, str) or not value:
        raise check.fail(at, f"the name of an earlier stage or a directory ({artifact})", repr(value))
    if value in earlier:
        stage = earlier[value]
        made = PROVIDES[stage.cmd.name]
        if artifact not in made:
            raise check.fail(at, f"a stage that makes {artifact}", f"'{value}', a {stage.cmd.name} stage")
        sub, needs = made[artifact]
        if needs and not stage.values.get(needs):
            raise check.fail(at, f"a stage that makes {artifact}", f"'{value}' without {needs} = true")
        return Ref(value, sub)
    if value in every:
        raise check.fail(at, "a stage declared above this one (stages run in file order)", f"'{value}', declared below")
    path = base / value
    if not path.exists():
        names = ", ".join(earlier) or "none"
        raise check.fail(at, f"an earlier stage ({names}) or an existing directory", f"'{value}'")
    return path.resolve()


def _typed(check: _Checker, at: str, value: Any, default: Any) -> Any:
    """``value`` if it has the type of ``default`` (ints pass for floats; None defaults take anything plain)."""
    if default is None:
        ok = isinstance(value, (str, int, float, bool, dict))
        expected = "a string, number or table"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        value = float(value) if ok else value
    elif isinstance(default, dict):
        ok, expected = isinstance(value, dict), "a table"
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        expected, value = "a list of numbers", tuple(float(v) for v in value) if ok else value
    else:
        ok, expected = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise check.fail(at, expected, repr(value))
    return value


def _fingerprint(pipeline: Pipeline, stage: Stage, fingerprints: dict[str, str]) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, Ref):
            return {"stage": fingerprints[v.stage], "sub": v.sub}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    text = json.dumps({"command": stage.cmd.name, "dataset": str(pipeline.dataset.resolve()), "splits": stage.splits,
                       "values": {k: plain(v) for k, v in stage.values.items()}}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _depends(value: Any) -> set[str]:
    """Names of the stages a stage value reads from."""
    if isinstance(value, Ref):
        return {value.stage}
    if isinstance(value, dict):
        return set().union(*map(_depends, value.values()))
    return set()


def select(pipeline: Pipeline, only: list[str] | None = None, until: str | None = None) -> Pipeline:
    """The pipeline cut down to some of its stages (file order kept): ``until`` keeps the stages up
    to and including that one; ``only`` keeps the named stages and the earlier stages they read
    from, directly or not (finished ones are then skipped as usual). ``ParameterError`` for a
    name the file does not declare, or for both at once."""
    names = [s.name for s in pipeline.stages]
    asked = [*(only or []), *([until] if until else [])]
    for name in asked:
        if name not in names:
            option = "--until" if name == until and name not in (only or []) else "--only"
            raise ParameterError(f"{option}: expected a stage of {pipeline.path} ({', '.join(names)}), found '{name}'")
    if only and until:
        raise ParameterError(f"--only and --until: expected one of them, found both ({', '.join(only)}; {until})")
    if until:
        keep = set(names[:names.index(until) + 1])
    elif only:
        keep = set(only)
        for stage in reversed(pipeline.stages):  # a stage only reads from earlier ones
            if stage.name in keep:
                for v in stage.values.values():
                    keep |= _depends(v)
    else:
        return pipeline
    return replace(pipeline, stages=[s for s in pipeline.stages if s.name in keep])


def run_pipeline(pipeline: Pipeline, force: bool = False, track: Track = no_track,
                 status: Callable[[str], None] = lambda msg: None, on_step=None) -> dict:
    """Runs every stage not finished under its fingerprint; returns ``{"stages": [...], "quality": [...]}``
    (also ``WORKSPACE/pipeline.json``). ``force`` reruns every stage from scratch."""
    pipeline.workspace.mkdir(parents=True, exist_ok=True)
    state_path = pipeline.workspace / STATE_FILE
    state = _read_state(state_path)
    summary = []
    for stage in pipeline.stages:
        action = _action(pipeline, state, stage, force)
        if action == "skip":
            status(f"{stage.name} ({stage.cmd.name}): done, skipped")
            summary.append({"stage": stage.name, "command": stage.cmd.name, "ran": False,
                            "seconds": state[stage.name].get("seconds", 0.0)})
            continue
        restart = action == "start over"
        status(f"{stage.name} ({stage.cmd.name} {'+'.join(stage.splits)}): {action}")
        state[stage.name] = {"fingerprint": stage.fingerprint, "finished": False}
        write_json(state_path, state)
        start = time.perf_counter()
        values = {k: pipeline.resolve(v) for k, v in stage.values.items()}
        run_stage(stage.cmd, pipeline.dataset, stage.splits, pipeline.out(stage.name), values, pipeline.device, restart, track,
                  on_step=(lambda *a, _n=stage.name, _e=_epochs(stage): on_step(_n, _e, *a)) if on_step else None)
        seconds = time.perf_counter() - start
        quality = _quality(pipeline, stage, track)
        state[stage.name] = {"fingerprint": stage.fingerprint, "finished": True, "seconds": seconds,
                             "quality": quality}
        write_json(state_path, state)
        summary.append({"stage": stage.name, "command": stage.cmd.name, "ran": True, "seconds": seconds})
    quality = [row for stage in pipeline.stages for row in state[stage.name].get("quality", [])]
    result = {"pipeline": str(pipeline.path), "workspace": str(pipeline.workspace), "stages": summary,
              "quality": quality}
    write_json(pipeline.workspace / "pipeline.json", result)
    return result


def planned(pipeline: Pipeline, force: bool = False) -> list[dict]:
    """What ``run_pipeline`` would do with each stage: run, resume, start over or skip."""
    state = _read_state(pipeline.workspace / STATE_FILE)
    return [{"stage": s.name, "command": s.cmd.name, "splits": s.splits, "action": _action(pipeline, state, s, force)}
            for s in pipeline.stages]


def _read_state(path: Path) -> dict:
    state = read_json(path, "the pipeline state noisyseg run wrote") if path.is_file() else {}
    if not isinstance(state, dict):
        raise InputError(path, "the pipeline state noisyseg run wrote", "another JSON value")
    return state


def _action(pipeline: Pipeline, state: dict, stage: Stage, force: bool) -> str:
    """skip (finished under the same fingerprint), resume (interrupted), start over (changed, or
    ``force``) or run (never started)."""
    record = state.get(stage.name) if isinstance(state.get(stage.name), dict) else None
    if record is None:
        return "start over" if force and pipeline.out(stage.name).exists() else "run"
    same = record.get("fingerprint") == stage.fingerprint
    if force or not same:
        return "start over"
    return "skip" if record.get("finished") and pipeline.out(stage.name).is_dir() else "resume"


def _epochs(stage: Stage) -> int:
    return stage.values.get("epochs", stage.cmd.options.get("epochs", 0)) if stage.cmd.name == "train" else 0


def _quality(pipeline: Pipeline, stage: Stage, track: Track) -> list[dict]:
    """Label quality of a stage's output per split with ground truth (none for other stages)."""
    from noisyseg.pipeline.evaluate import evaluate

    if stage.cmd.name not in (*LABEL_STAGES, "predict"):
        return []
    ds = Dataset(pipeline.dataset)
    rows = []
    for split in stage.splits:
        ids = ds.ids(split)
        if not ids or not all(ds.has_mask(i) for i in ids):
            continue
        out = pipeline.out(stage.name)
        if stage.cmd.name == "predict":
            q = evaluate(pipeline.dataset, split=split, probs=out / "probs", track=track)["probs"]
        else:
            q = evaluate(pipeline.dataset, split=split, labels=out, track=track)["labels"]
        rows.append({"stage": stage.name, "command": stage.cmd.name, "split": split, "miou": q["miou"],
                     "precision": q["precision"], "coverage": q["coverage"]})
    return rows
