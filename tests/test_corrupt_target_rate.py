"""``corrupt --target-rate``: the mix's strength is scaled until the split's wrong-pixel rate hits
the target; what was chosen is in report.json and in the run's parameters."""

import json

import numpy as np
import pytest
from conftest import assert_one_line_error, camvid_view

from noisyseg.errors import ParameterError
from noisyseg.io import Dataset, LabelDir
from noisyseg.noise import DEFAULT_NOISE, STRENGTHS, NOISE_MODELS, parse_noise_spec, saturation_scale, scale_steps
from noisyseg.noise.strength import find_scale
from noisyseg.pipeline.corrupt import TARGET_TOLERANCE, corrupt, search_subset


def written_rate(data, split, out) -> float:
    ds = Dataset(data)
    labels = LabelDir(out)
    wrong = valid = 0
    for image_id in ds.ids(split):
        gt = ds.load_mask(image_id)
        noisy = labels.read(image_id, ds.num_classes, gt.shape)
        wrong += int(((noisy != gt) & (gt != 255)).sum())
        valid += int((gt != 255).sum())
    return wrong / valid


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    """Procedural images of large objects (96 px, 24 images): the default mix gives ~13% here."""
    from noisyseg.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("objects") / "data", splits={"a": 24}, size=96)


# -- scaling a mix --------------------------------------------------------------------------------

def test_every_model_says_what_its_strengths_are():
    assert set(STRENGTHS) == set(NOISE_MODELS)


def test_scaling_multiplies_chances_and_sizes_and_round_trips():
    steps = parse_noise_spec(DEFAULT_NOISE)
    assert scale_steps(steps, 1.0) == parse_noise_spec(DEFAULT_NOISE)  # defaults spelled out change nothing here
    half = scale_steps(steps, 0.5)
    assert str(half[0]) == "cam:rate=0.2,scale=8"  # cam's coarseness stays; it runs on fewer images
    assert half[1].rate == 0.5 and half[1].params == {"k": 4, "p": 0.35}
    big = scale_steps(steps, 3.0)
    assert big[0].rate == 1.0 and big[1].params == {"k": 24, "p": 1.0} and big[3].params == {"p": 0.45}
    assert all(s.rate == 0 for s in scale_steps(steps, 0.0))
    # Defaults become explicit, odd scales give 4-decimal chances: the string parses back to the steps.
    odd = scale_steps(parse_noise_spec("drop+swap:max_share=0.1"), 1.2345678)
    assert [str(step) for step in odd] == ["drop:p=0.3704", "swap:max_share=0.1,p=0.2469"]
    for s in (0.1234567, 0.987654, 2.71828):
        scaled = scale_steps(steps, s)
        assert parse_noise_spec("+".join(map(str, scaled))) == scaled
    assert saturation_scale(steps) == pytest.approx(1 / 0.15)


def test_find_scale_brackets_a_rising_rate():
    calls = []

    def measure(s):
        calls.append(s)
        return min(0.9, 0.12 * s ** 1.5)

    found = find_scale(measure, 0.4, 0.005, 8.0)
    assert found.found and abs(found.best[1] - 0.4) <= 0.005 and len(calls) <= 8
    assert calls[0] == 1.0
    high = find_scale(measure, 0.95, 0.005, 8.0)
    assert high.unreachable and high.best == (8.0, 0.9)
    # A rate that jumps over the target: the bracket narrows to the jump and the search says so.
    jump = find_scale(lambda s: 0.1 if s < 2.5 else 0.3, 0.2, 0.01, 8.0)
    assert not jump.found and not jump.unreachable
    assert jump.hi[0] - jump.lo[0] <= 0.005 * jump.hi[0] and jump.lo[0] < 2.5 <= jump.hi[0]


def test_find_scale_moves_on_when_the_rate_jumps_over_the_target():
    """A wobbling rate crosses the target several times: where it jumps over it (at 2.5 and 3) the
    bracket narrows to nothing, and the search moves on to the crossing that lands on it."""
    def measure(s):
        return 0.1 if s < 2.5 else 0.3 if s < 3 else 0.1 if s < 3.3 else 0.2 if s < 3.5 else 0.3

    known = [(2.0, 0.1), (2.9, 0.3), (3.1, 0.1), (3.6, 0.3)]
    found = find_scale(measure, 0.2, 0.01, 8.0, known=known)
    assert found.found and 3.3 <= found.best[0] < 3.5 and found.best[1] == 0.2
    assert any(2.49 < s < 2.5 for s, _ in found.points) and len(found.points) <= 24


def test_search_subset_is_deterministic_and_order_free():
    ids = [f"img_{i:04d}" for i in range(300)]
    subset = search_subset(ids)
    assert len(subset) == 64 and subset == [i for i in ids if i in set(subset)]
    assert set(search_subset(ids[::-1])) == set(subset)
    assert search_subset(ids[:10]) == ids[:10]


# -- the command -------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [0.1, 0.2])
def test_written_labels_hit_the_target(cli, objects, tmp_path, target):
    out = tmp_path / "noisy"
    result = cli("corrupt", objects, "--split", "a", "--out", out, "--target-rate", target, "--json")
    assert result.code == 0, result
    rate = written_rate(objects, "a", out)
    assert abs(rate - target) <= TARGET_TOLERANCE
    report = json.loads((out / "report.json").read_text())
    chosen = report["strength"]
    assert report["target_rate"] == target and chosen["target"] == target
    assert report["noise_rate"] == pytest.approx(rate) and chosen["rate"] == pytest.approx(rate)
    assert chosen["base_noise"] == DEFAULT_NOISE and chosen["iterations"] == len(chosen["searches"]) >= 1
    assert chosen["search_images"] == 24 and chosen["scale"] > 0
    assert chosen["noise"] == "+".join(map(str, scale_steps(parse_noise_spec(DEFAULT_NOISE), chosen["scale"])))
    assert report["noise"] == chosen["noise"].split("+")
    assert json.loads(result.out)["strength"]["scale"] == chosen["scale"]
    # The spec it chose, given as --noise, makes the same labels.
    again = tmp_path / "again"
    assert cli("corrupt", objects, "--split", "a", "--out", again, "--noise", chosen["noise"]).code == 0
    for image_id in Dataset(objects).ids("a"):
        np.testing.assert_array_equal(LabelDir(out).read(image_id, 5), LabelDir(again).read(image_id, 5))


def test_the_shapes_fixture_hits_a_target_too(cli, shapes, tmp_path):
    result = cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "o", "--target-rate", "0.12")
    assert result.code == 0, result
    assert abs(written_rate(shapes, "weak", tmp_path / "o") - 0.12) <= TARGET_TOLERANCE
    assert "target rate 0.12: scale" in result.out


def test_rerun_resumes_and_another_target_is_refused(cli, objects, tmp_path):
    out = tmp_path / "noisy"
    args = ["corrupt", objects, "--split", "a", "--out", out, "--target-rate", "0.15"]
    assert cli(*args).code == 0
    marker = json.loads((out / ".noisyseg-run.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert marker["params"]["noise"] == report["noise"] and marker["params"]["target_rate"] == 0.15
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert cli(*args).code == 0  # the same choice again: resumed, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes
    # Another target (or plain --noise) is another run: refused before any search, without --force.
    assert_one_line_error(cli(*args[:-1], "0.25"), "--force")
    assert_one_line_error(cli("corrupt", objects, "--split", "a", "--out", out), "--force")
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes
    assert cli(*args[:-1], "0.25", "--force").code == 0
    assert abs(written_rate(objects, "a", out) - 0.25) <= TARGET_TOLERANCE


def test_a_second_split_with_another_strength_is_refused(cli, shapes, tmp_path):
    """One dir may hold several splits, but a target rate picks a strength per split: the second
    split's strength differs here (weak and strong need other scales for 0.12), so it is refused."""
    strong = corrupt(shapes, "strong", tmp_path / "strong", target_rate=0.12)["noise"]
    out = tmp_path / "noisy"
    assert cli("corrupt", shapes, "--split", "weak", "--out", out, "--target-rate", "0.12").code == 0
    assert json.loads((out / "report.json").read_text())["noise"] != strong
    result = cli("corrupt", shapes, "--split", "strong", "--out", out, "--target-rate", "0.12")
    assert_one_line_error(result, "--target-rate: expected the strength", "its own --out")
    assert not list(out.glob("strong_*.png"))
    assert json.loads((out / "report.json").read_text())["split"] == "weak"


@pytest.mark.parametrize("value", ["0", "1", "-0.2", "1.5", "nan"])
def test_bad_target_is_one_line(cli, shapes, tmp_path, value):
    result = cli("corrupt", shapes, "--split", "weak", "--out", tmp_path / "x", "--target-rate", value)
    assert_one_line_error(result, "--target-rate: expected a number in (0, 1)", "found")
    assert not (tmp_path / "x").exists()


def test_unreachable_target_names_the_largest_rate(cli, objects, tmp_path):
    result = cli("corrupt", objects, "--split", "a", "--out", tmp_path / "x", "--noise", "swap:p=0.1",
                 "--target-rate", "0.9")
    assert_one_line_error(result, "--target-rate: expected at most", "the largest wrong-pixel rate", "found 0.9")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ParameterError, match="expected a number in"):
        corrupt(objects, "a", tmp_path / "y", target_rate="0.2")
    with pytest.raises(ParameterError, match="expected a number in"):
        corrupt(objects, "a", tmp_path / "y", target_rate=True)
    assert not (tmp_path / "y").exists()


def test_search_on_a_subset_then_checked_on_the_whole_split(objects, tmp_path, monkeypatch):
    """With fewer search images than the split, the scale is searched on the subset, the rate is
    checked on the whole split, and the written labels are within the tolerance."""
    import noisyseg.pipeline.corrupt as runner

    monkeypatch.setattr(runner, "SEARCH_IMAGES", 6)
    report = corrupt(objects, "a", tmp_path / "o", target_rate=0.2)
    chosen = report["strength"]
    assert chosen["search_images"] == 6
    on_subset = [step for step in chosen["searches"] if step["images"] == 6]
    on_split = [step for step in chosen["searches"] if step["images"] == 24]
    assert on_subset and on_split and chosen["searches"] == on_subset + on_split
    # The 6 images are heavier than the split: the whole split's rate was off, and refined there.
    assert len(on_split) > 1 and abs(on_split[0]["rate"] - 0.2) > TARGET_TOLERANCE
    assert abs(chosen["rate"] - 0.2) <= TARGET_TOLERANCE and chosen["rate"] == on_split[-1]["rate"]
    assert abs(written_rate(objects, "a", tmp_path / "o") - 0.2) <= TARGET_TOLERANCE
    assert report["noise_rate"] == pytest.approx(chosen["rate"])


@pytest.mark.camvid
def test_camvid_subset_hits_0_2(camvid_root, tmp_path):
    ds = Dataset(camvid_root)
    ids = ds.ids("train")[:20]
    view = camvid_view(camvid_root, tmp_path, ids)
    report = corrupt(view, "few", tmp_path / "noisy", seed=0, target_rate=0.2)
    assert abs(written_rate(view, "few", tmp_path / "noisy") - 0.2) <= TARGET_TOLERANCE
    assert report["strength"]["search_images"] == 20


def test_help_mentions_it(cli):
    result = cli("corrupt", "--help")
    assert result.code == 0 and "--target-rate" in result.out


def test_a_pipeline_stage_takes_target_rate(objects, tmp_path):
    """``target_rate`` is a key of a corrupt stage (the runner's own option)."""
    from noisyseg.pipeline.run import load_pipeline, run_pipeline

    path = tmp_path / "p.toml"
    path.write_text(f'dataset = "{objects}"\nworkspace = "ws"\n\n[stages.noisy]\ncommand = "corrupt"\nsplit = "a"\n'
                    f'target_rate = 0.15\n')
    run_pipeline(load_pipeline(path))
    report = json.loads((tmp_path / "ws" / "noisy" / "report.json").read_text())
    assert report["target_rate"] == 0.15 and abs(report["noise_rate"] - 0.15) <= TARGET_TOLERANCE
    assert abs(written_rate(objects, "a", tmp_path / "ws" / "noisy") - 0.15) <= TARGET_TOLERANCE
