"""The semi-supervised loop end to end on the tiny procedural data: a third-party pseudo-labeler
called online, resume equals uninterrupted, the CLI and predict on its run directory."""

import json

import numpy as np
import pytest
import torch

from noisyseg import plugins
from noisyseg.hookspecs import hookimpl
from noisyseg.io import ProbsDir
from noisyseg.strategies.pseudo_labeling import PseudoLabeler, PseudoLabels
from noisyseg.strategies.spec import Param, StrategySpec
from noisyseg.train.checkpoint import load_checkpoint
from noisyseg.train.semi import SemiConfig, train_semi
from conftest import assert_same_checkpoints

TINY = {"width": "8", "depth": "1,1,1,1", "feature_dim": "16"}
TINY_CLI = ["--model", "deeplabv3plus", "-p", "width=8", "-p", "depth=1,1,1,1", "-p", "feature_dim=16"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(shapes, out, **kw):
    base = dict(dataset=str(shapes), split="strong", unlabelled="weak", out=str(out), model="deeplabv3plus",
                model_params=TINY, epochs=2, batch_size=2, crop_size=32, device="cpu")
    return SemiConfig(**(base | kw))


class _Recording(PseudoLabeler):
    """A third party's pseudo-labeler: argmax on the left half of each image, ignore on the right."""

    calls: list = []

    def __init__(self, keep: str = "left"):
        self.keep = keep

    def label(self, inputs):
        probs = inputs.probs
        _Recording.calls.append((tuple(probs.shape), str(probs.device), len(inputs.ids)))
        labels = probs.argmax(1)
        W = labels.shape[-1]
        if self.keep == "left":
            labels[..., W // 2:] = 255
        else:
            labels[...] = 255
        return PseudoLabels(labels)


class _Plugin:
    @hookimpl
    def noisyseg_strategies(self):
        return [StrategySpec("pseudo-labeling", "third-party-half", "argmax on the left half", _Recording,
                             (Param("keep", str, "left", choices=("left", "none")),))]


def test_third_party_pseudo_labeler_is_called_online_by_the_loop(shapes, tmp_path):
    plugin = _Plugin()
    plugins.register(plugin, name="third-party")
    try:
        _Recording.calls.clear()
        report = train_semi(_cfg(shapes, tmp_path / "half", pseudo_label="third-party-half", threshold=0.0))
        steps = report["steps_per_epoch"] * 2
        # once per step, on the batched (B, C, S, S) predictions of the global unlabelled batch
        assert _Recording.calls == [((2, 5, 32, 32), "cpu", 2)] * steps
        assert all(v > 0 for v in report["terms_per_epoch"]["s"])
        nothing = train_semi(_cfg(shapes, tmp_path / "none", pseudo_label="third-party-half", threshold=0.0,
                                  pseudo_params={"keep": "none"}))
        assert nothing["terms_per_epoch"]["s"] == [0.0, 0.0]  # every pixel ignored: no unsupervised loss
        config = json.loads((tmp_path / "none" / "config.json").read_text())
        assert config["plan"]["pseudo_label"] == "third-party-half" and config["pseudo_params"] == {"keep": "none"}
    finally:
        plugins.unregister(plugin)


@pytest.mark.parametrize("method,kw", [("unimatch", {}), ("u2pl", {}), ("u2pl", {"pseudo_label": "prototype-denoised"})])
def test_resume_equals_uninterrupted(shapes, tmp_path, method, kw):
    full = train_semi(_cfg(shapes, tmp_path / "full", method=method, epochs=3, **kw))

    def stop_in_epoch_three(epoch, step, steps, terms):
        if epoch == 2 and step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_semi(_cfg(shapes, tmp_path / "cut", method=method, epochs=3, **kw), on_step=stop_in_epoch_three)
    assert json.loads(load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"])["epoch"] == 2
    resumed = train_semi(_cfg(shapes, tmp_path / "cut", method=method, epochs=3, **kw))
    assert resumed["resumed_from_epoch"] == 2
    np.testing.assert_allclose(resumed["loss_per_step"], full["loss_per_step"], rtol=1e-5)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert_same_checkpoints(a, b, method, rtol=1e-4, atol=1e-5)
    if method == "u2pl":
        assert full["terms_per_epoch"]["c"][0] is None and full["terms_per_epoch"]["c"][1] > 0  # warm-up epoch first
        assert full["ema_updates"] == 2 * full["steps_per_epoch"]
        assert int(a["bank"]["size"].sum()) > 0
    if kw:  # the strategy's momentum prototypes are part of the run's state
        torch.testing.assert_close(a["pseudo_state"]["prototypes"], b["pseudo_state"]["prototypes"])


def test_cli_semi_run_predict_and_best_checkpoint(cli, shapes, tmp_path):
    run = tmp_path / "run"
    result = cli("train", shapes, "--split", "strong", "--unlabelled", "weak", "--method", "mean-teacher", "--out", run,
                 *TINY_CLI, "--epochs", "2", "--batch-size", "2", "--crop-size", "32", "--device", "cpu",
                 "--val-split", "strong", "--strong-aug", "colour,cutmix")
    assert result.code == 0, result
    assert "mean-teacher" in result.out and "best val mIoU" in result.out
    report = json.loads((run / "report.json").read_text())
    assert report["plan"]["teacher"] == "ema" and report["plan"]["strong"]["ops"] == ["colour", "cutmix"]
    best = report["best"]
    assert best["which"] in ("student", "teacher") and best["which"] == report["predict_with"]
    assert best["miou"] == max(v for vs in report["val_miou"].values() for v in vs if v is not None)
    final, kept = load_checkpoint(run / "model.pt")["model"], load_checkpoint(run / "best.pt")["model"]
    assert all(torch.equal(final[k], kept[k]) for k in final)
    result = cli("predict", run, shapes, "--split", "weak", "--out", tmp_path / "preds", "--device", "cpu")
    assert result.code == 0, result
    probs = ProbsDir(tmp_path / "preds" / "probs").read("weak_0000", 5, (48, 48))
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1, atol=1e-2)
    # the same command again resumes (nothing left to do), another configuration is refused
    again = cli("train", shapes, "--split", "strong", "--unlabelled", "weak", "--method", "mean-teacher", "--out", run,
                *TINY_CLI, "--epochs", "2", "--batch-size", "2", "--crop-size", "32", "--device", "cpu",
                "--val-split", "strong", "--strong-aug", "colour,cutmix")
    assert again.code == 0 and json.loads((run / "report.json").read_text())["resumed_from_epoch"] == 2
    other = cli("train", shapes, "--split", "strong", "--unlabelled", "weak", "--method", "fixmatch", "--out", run,
                *TINY_CLI, "--epochs", "2", "--device", "cpu")
    assert other.code == 2 and "another configuration" in other.err


def test_noisy_labels_stream_and_weights(shapes, shapes_chain, tmp_path):
    """--unlabelled-labels: the second stream's own labels add their cross-entropy (L_n)."""
    report = train_semi(_cfg(shapes, tmp_path / "mt", method="mean-teacher", unlabelled_labels=str(shapes_chain["noisy"]),
                             accumulate=2, batch_size=1))
    assert all(v > 0 for v in report["terms_per_epoch"]["n"])
    assert report["global_batch"] == {"labelled": 2, "unlabelled": 2} and report["steps_per_epoch"] == 4


def test_cli_semi_errors(cli, shapes, tmp_path):
    from conftest import assert_one_line_error

    base = ["train", shapes, "--split", "strong", "--out", tmp_path / "r", *TINY_CLI, "--device", "cpu", "--epochs", "2"]
    assert_one_line_error(cli(*base, "--method", "u2pl"), "--method u2pl: expected an unlabelled split")
    assert_one_line_error(cli(*base, "--unlabelled", "weak", "--method", "u2pl", "--teacher", "self"),
                          "needs an EMA teacher")
    assert_one_line_error(cli(*base, "--unlabelled", "weak", "--pseudo-label", "nope"),
                          "unknown pseudo-labeling strategy 'nope'", "entropy-filter")
    assert_one_line_error(cli(*base, "--unlabelled", "weak", "--folds", "2"), "--folds: expected 1")
    assert_one_line_error(cli(*base, "--unlabelled", "strong"), "in both the labelled split(s)")
    assert_one_line_error(cli(*base, "--unlabelled", "weak", "--pseudo-param", "alpha=3",
                              "--pseudo-label", "entropy-filter"), "alpha")


def test_first_semi_step_teacher_is_the_warmed_up_student(shapes, tmp_path, monkeypatch):
    """After supervised-only warm-up epochs, the EMA teacher's first targets come from the student the
    warm-up trained, not from the initial weights the teacher was copied from."""
    from noisyseg.train.semi.step import SemiStep

    seen = []
    call = SemiStep.__call__

    def spy(self, labelled, unlabelled, *args, **kw):
        if unlabelled is not None and not seen:
            seen.append([torch.equal(t, s) for t, s in zip(self.teacher.state_dict().values(),
                                                            self.student.state_dict().values())])
        return call(self, labelled, unlabelled, *args, **kw)

    monkeypatch.setattr(SemiStep, "__call__", spy)
    train_semi(_cfg(shapes, tmp_path / "run", method="u2pl", epochs=2, contrastive_weight=0.0))
    assert seen and all(seen[0]), "the teacher's first targets came from weights the warm-up never trained"


def test_unimatch_feature_perturbation_stream_with_either_teacher(shapes, tmp_path):
    """UniMatch's fp term is trained whether the targets come from the student or an EMA teacher."""
    for teacher in ("self", "ema"):
        report = train_semi(_cfg(shapes, tmp_path / teacher, method="unimatch", teacher=teacher, threshold=0.0,
                                 epochs=1))
        assert report["terms_per_epoch"]["fp"][0] > 0, teacher


@pytest.mark.parametrize("method,schedule,expected", [
    ("unimatch", None, [0.2, 0.2, 0.2]),              # the strategy's alpha throughout
    ("unimatch", True, [0.2, 0.2 * 2 / 3, 0.2 / 3]),  # --alpha-schedule: U2PL's α_0 (1 - epoch / epochs)
    ("u2pl", False, [0.2, 0.2]),                      # --fixed-alpha (u2pl's first epoch is its warm-up)
])
def test_alpha_schedule_reaches_the_pseudo_labeler(shapes, tmp_path, monkeypatch, method, schedule, expected):
    from noisyseg.strategies.pseudo_labeling.entropy_filter import EntropyFilter

    seen = []
    label = EntropyFilter.label

    def spy(self, inputs):
        seen.append(self.alpha)
        return label(self, inputs)

    monkeypatch.setattr(EntropyFilter, "label", spy)
    report = train_semi(_cfg(shapes, tmp_path / "run", method=method, pseudo_label="entropy-filter", epochs=3,
                             threshold=0.0, contrastive_weight=0.0, alpha_schedule=schedule))
    steps = report["steps_per_epoch"]
    per_epoch = [seen[k] for k in range(0, len(seen), steps)]
    assert len(seen) == steps * len(expected) and per_epoch == pytest.approx(expected)


def test_peak_memory_survives_a_rerun_with_nothing_left_to_train(shapes, tmp_path, monkeypatch):
    """report.json's peak memory is the training's, not that of a later invocation that only resumed."""
    from noisyseg.train.semi import loop

    monkeypatch.setattr(loop, "_peak_memory_mb", lambda device: 100.0)
    first = train_semi(_cfg(shapes, tmp_path / "run", method="fixmatch", epochs=1))
    monkeypatch.setattr(loop, "_peak_memory_mb", lambda device: 5.0)
    again = train_semi(_cfg(shapes, tmp_path / "run", method="fixmatch", epochs=1))
    assert again["resumed_from_epoch"] == 1 and first["peak_memory_mb"] == again["peak_memory_mb"] == 100.0
