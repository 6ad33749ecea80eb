"""The strategy commands' shared skeleton (noisyseg.pipeline.runner): declared inputs, refusals, resume.

Strategies here are registered at run time, as a third-party plugin's would be, and declare their
inputs with ``needs``/``accepts`` only: no runner names them.
"""

import json

import numpy as np
import pytest
import torch

from noisyseg import plugins
from noisyseg.errors import ParameterError
from noisyseg.hookspecs import hookimpl
from noisyseg.pipeline.correct import correct
from noisyseg.pipeline.detect import detect
from noisyseg.pipeline.pseudo_label import pseudo_label
from noisyseg.pipeline.runner import Input, StrategyRun
from noisyseg.pipeline.weight import weight
from noisyseg.strategies.correction.base import Corrector
from noisyseg.strategies.detection import Detection, Detector
from noisyseg.strategies.pseudo_labeling.base import PseudoLabeler, PseudoLabels
from noisyseg.strategies.spec import StrategySpec
from noisyseg.strategies.weighting.base import Weighter
from noisyseg.strategies.weighting.urn import Urn

SEEN: dict[str, list] = {}


def _seen(name, inputs, fields):
    SEEN.setdefault(name, []).append({f: getattr(inputs, f) is not None for f in fields})


class ImageWeighter(Weighter):
    """Weights 1 where the image is bright, 0.5 elsewhere: needs nothing but probs, reads the image."""

    accepts = ("images",)

    def weigh(self, inputs):
        _seen("image-weighter", inputs, ("labels", "images"))
        if inputs.images is None:
            return torch.full(inputs.probs[:, 0].shape, 0.25)
        return torch.where(inputs.images.float().mean(-1) > 100, 1.0, 0.5).to(inputs.probs.device)


class Blind(Weighter):
    def weigh(self, inputs):
        _seen("blind", inputs, ("labels", "images"))
        return torch.ones(inputs.probs[:, 0].shape)


class UrnCopy(Urn):
    """A subclass of URN under another name: it inherits URN's declared inputs."""


class ProbsCorrector(Corrector):
    """Fills holes with the probs' argmax when it is given them, else with class 0."""

    accepts = ("probs",)

    def correct_batch(self, inputs, times):
        _seen("probs-corrector", inputs, ("images", "features", "probs"))
        if inputs.probs is None:
            return torch.zeros_like(inputs.labels)
        return inputs.probs.argmax(1)


class TagsLabeler(PseudoLabeler):
    accepts = ("tags",)

    def label(self, inputs):
        _seen("tags-labeler", inputs, ("cams", "logits", "features", "tags", "labels"))
        return PseudoLabels(inputs.probs.argmax(1))


class LabelsLabeler(PseudoLabeler):
    needs = ("probs", "labels")

    def label(self, inputs):
        raise AssertionError("never called")


class Refuses:
    """One strategy object of every kind whose batch call refuses its inputs with a ValueError."""

    def detect(self, probs, labels):
        raise ValueError("these probs will not do")

    fit = Detector.fit
    needs = ()

    def correct(self, inputs):
        raise ValueError("these probs will not do")

    def label(self, inputs):
        raise ValueError("these probs will not do")

    def weigh(self, inputs):
        raise ValueError("these probs will not do")


class _Plugin:
    @hookimpl
    def noisyseg_strategies(self):
        def spec(kind, name, factory):
            return StrategySpec(kind, name, "a test strategy", factory)

        return [spec("weighting", "image-weighter", ImageWeighter), spec("weighting", "blind", Blind),
                spec("weighting", "urn-copy", lambda: UrnCopy(crf=False)),
                spec("correction", "probs-corrector", ProbsCorrector),
                spec("pseudo-labeling", "tags-labeler", TagsLabeler),
                spec("pseudo-labeling", "labels-labeler", LabelsLabeler),
                *(spec(kind, "refuses", Refuses) for kind in ("detection", "correction", "pseudo-labeling", "weighting"))]


@pytest.fixture(autouse=True)
def registered():
    plugin = _Plugin()
    plugins.register(plugin, name="runner-test")
    SEEN.clear()
    try:
        yield
    finally:
        plugins.unregister(plugin)


def _cleaned(c, tmp_path):
    """The noisy labels with every third pixel a hole."""
    from noisyseg.io import Dataset, LabelDir

    ds = Dataset(c["data"])
    out = LabelDir(tmp_path / "cleaned")
    for image_id in ds.ids("weak"):
        lab = LabelDir(c["noisy"]).read(image_id, ds.num_classes).copy()
        lab.reshape(-1)[::3] = 255
        out.write(image_id, lab)
    return tmp_path / "cleaned"


def test_a_declared_input_reaches_a_third_party_weighter(shapes_chain, tmp_path):
    c = shapes_chain
    common = dict(dataset=c["data"], split="weak", probs=c["probs"], device="cpu")
    report = weight(**common, strategy="image-weighter", out=tmp_path / "w")
    assert SEEN["image-weighter"] and all(s == {"labels": False, "images": True} for s in SEEN["image-weighter"])
    assert 0.5 <= report["mean_weight"] < 1.0  # the images decided: not the 0.25 of a weighter without them
    weight(**common, strategy="blind", labels=c["noisy"], out=tmp_path / "b")
    assert all(s == {"labels": True, "images": False} for s in SEEN["blind"])  # labels when given, no images


def test_urn_reads_images_because_it_declares_them(shapes_chain, tmp_path, monkeypatch):
    """No runner tests the strategy's name: a subclass of URN under another name gets the images too."""
    assert {"images", "labels"} <= set(Urn.accepts)
    c = shapes_chain
    images = []
    real = UrnCopy.weigh
    monkeypatch.setattr(UrnCopy, "weigh", lambda self, inputs: images.append(inputs.images is not None) or real(self, inputs))
    weight(c["data"], "weak", c["probs"], "urn-copy", tmp_path / "u", device="cpu")
    assert images and all(images)


def test_correct_loads_what_a_strategy_accepts(shapes_chain, tmp_path):
    c = shapes_chain
    cleaned = _cleaned(c, tmp_path)
    with_probs = correct(c["data"], "weak", cleaned, "probs-corrector", tmp_path / "a", probs=c["probs"], device="cpu")
    assert all(s == {"images": False, "features": False, "probs": True} for s in SEEN.pop("probs-corrector"))
    without = correct(c["data"], "weak", cleaned, "probs-corrector", tmp_path / "b", device="cpu")
    assert all(s == {"images": False, "features": False, "probs": False} for s in SEEN.pop("probs-corrector"))
    assert with_probs["corrected_label_quality"]["miou"] > without["corrected_label_quality"]["miou"]
    correct(c["data"], "weak", cleaned, "probs-corrector", tmp_path / "c", probs=c["probs"], crf=True, device="cpu")
    # --crf is a post-step that declares the images it needs; the strategy sees them too.
    assert all(s == {"images": True, "features": False, "probs": True} for s in SEEN.pop("probs-corrector"))


def test_pseudo_label_tags_to_a_strategy_that_accepts_them_and_no_pixel_labels(shapes_chain, tmp_path):
    c = shapes_chain
    cams = tmp_path / "cams"
    cams.mkdir()
    for p in c["probs"].iterdir():
        np.save(cams / p.name, np.load(p)[:, ::4, ::4])
    pseudo_label(c["data"], "weak", c["probs"], "tags-labeler", tmp_path / "t", cams=cams, device="cpu")
    assert all(s == {"cams": True, "logits": False, "features": False, "tags": True, "labels": False}
               for s in SEEN.pop("tags-labeler"))
    pseudo_label(c["data"], "weak", c["probs"], "tags-labeler", tmp_path / "n", device="cpu")
    assert all(not any(s.values()) for s in SEEN.pop("tags-labeler"))  # no dataset tags, no CAMs: none
    with pytest.raises(ParameterError, match="^strategy 'labels-labeler' needs pixel labels, which 'pseudo-label' "
                                             "does not read$"):
        pseudo_label(c["data"], "weak", c["probs"], "labels-labeler", tmp_path / "l", device="cpu")
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize("command", ["detect", "correct", "pseudo-label", "weight"])
def test_a_strategy_refusing_its_inputs_is_a_parameter_error_naming_it(command, shapes_chain, tmp_path):
    c = shapes_chain
    out = tmp_path / "o"
    call = {"detect": lambda: detect(c["data"], "weak", c["noisy"], c["probs"], "refuses", out, device="cpu"),
            "correct": lambda: correct(c["data"], "weak", _cleaned(c, tmp_path), "refuses", out, device="cpu"),
            "pseudo-label": lambda: pseudo_label(c["data"], "weak", c["probs"], "refuses", out, device="cpu"),
            "weight": lambda: weight(c["data"], "weak", c["probs"], "refuses", out, device="cpu")}[command]
    with pytest.raises(ParameterError, match="^strategy 'refuses': these probs will not do$"):
        call()
    assert not out.exists()  # nothing finished: the claim on the directory is given back


def test_check_reports_the_first_missing_input_in_order(shapes_chain, tmp_path):
    run = StrategyRun("weight", "weighting", shapes_chain["data"], "weak", "blind", None, tmp_path / "o")
    run.strategy.needs = ("probs", "labels", "images", "depth")  # 'depth': a name weight does not know
    inputs = [Input("probs", "--probs DIR", True), Input("labels", "--labels DIR", False, when="with these parameters"),
              Input("images", "the dataset's images", False)]
    with pytest.raises(ParameterError, match="^strategy 'blind' with these parameters needs --labels DIR, found none given$"):
        run.check(inputs)
    run.strategy.needs = ("probs",)
    run.strategy.accepts = ("images",)
    assert run.check(inputs) == {"probs"}  # accepted but not given: not loaded
    assert run.check([*inputs[:2], Input("images", "x", True), Input("cams", "x", True, always=True)]) == \
        {"probs", "images", "cams"}
    assert run.check(inputs, also_needs=["probs"]) == {"probs"}
    with pytest.raises(ParameterError, match="needs the dataset's images, found none given"):
        run.check(inputs, also_needs=["images"])


def test_resumed_run_reports_like_the_first(shapes_chain, tmp_path):
    """Images an earlier run finished are skipped, still counted, and the report is the same (float
    weights: 0.5 and 1 read back exactly; a PNG holds weight x 255 rounded)."""
    c = shapes_chain
    args = (c["data"], "weak", c["probs"], "image-weighter", tmp_path / "w")
    first = weight(*args, labels=c["noisy"], as_float=True, device="cpu")
    (tmp_path / "w" / "weak_0002.npy").unlink()
    again = weight(*args, labels=c["noisy"], as_float=True, device="cpu")
    assert again["skipped"] == 7 and first["skipped"] == 0
    drop = {"skipped", "timings", "images_per_second"}
    assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in first.items() if k not in drop}
    saved = json.loads((tmp_path / "w" / "report-weak.json").read_text())
    assert list(saved)[:3] == ["command", "dataset", "probs"] and saved["split"] == "weak"
