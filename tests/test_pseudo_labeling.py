"""Pseudo-labeling functions: the formulas of U2PL, PseudoSeg and the CAM baseline."""

import math

import pytest
import torch

from noisyseg.strategies.pseudo_labeling import (PseudoInputs, alpha_schedule, argmax_labels, calibrated_fusion,
                                                 cam_threshold, class_balanced_labels, class_prototypes, entropy_filter,
                                                 fusion_norm, momentum_update, prototype_denoise, prototype_weights,
                                                 sharpen)
from noisyseg.strategies.pseudo_labeling.prototype_denoised import PrototypeDenoised


def entropy(p, dim=1):
    return -(p * p.clamp_min(1e-30).log()).sum(dim)


class TestCalibratedFusion:
    def test_rows_sum_to_one(self):
        torch.manual_seed(0)
        a, b = torch.randn(3, 6, 10, 12) * 4, torch.randn(3, 6, 10, 12)
        for norm in ("image", "batch", "none"):
            y = calibrated_fusion(a, b, norm=norm)
            assert y.shape == a.shape
            assert torch.allclose(y.sum(1), torch.ones(3, 10, 12), atol=1e-5)
            assert (y >= 0).all()

    def test_sharpening_lowers_entropy(self):
        torch.manual_seed(1)
        a, b = torch.randn(2, 5, 8, 8), torch.randn(2, 5, 8, 8)
        flat = calibrated_fusion(a, b, temperature=1.0)
        sharp = calibrated_fusion(a, b, temperature=0.5)
        sharper = calibrated_fusion(a, b, temperature=0.3)
        assert (entropy(sharp) < entropy(flat)).all()
        assert (entropy(sharper) < entropy(sharp)).all()
        # Sharpening keeps the argmax.
        assert torch.equal(sharp.argmax(1), flat.argmax(1))

    def test_temperature_one_is_the_gamma_average(self):
        torch.manual_seed(2)
        a, b = torch.randn(2, 4, 5, 5) * 3, torch.randn(2, 4, 5, 5)
        n = torch.sqrt((a.pow(2).mean((1, 2, 3), keepdim=True) + b.pow(2).mean((1, 2, 3), keepdim=True)) / 2)
        want = 0.3 * torch.softmax(a / n, 1) + 0.7 * torch.softmax(b / n, 1)
        assert torch.allclose(calibrated_fusion(a, b, gamma=0.3, temperature=1.0), want, atol=1e-6)
        assert torch.allclose(sharpen(want, 0.5), want.pow(2) / want.pow(2).sum(1, keepdim=True), atol=1e-6)

    @pytest.mark.parametrize("norm", ["batch", "image"])
    @pytest.mark.parametrize("k", [0.01, 3.0, 250.0])
    def test_scaling_both_sources_changes_nothing(self, norm, k):
        torch.manual_seed(3)
        a, b = torch.randn(2, 5, 6, 7) * 5, torch.randn(2, 5, 6, 7)
        assert torch.allclose(calibrated_fusion(k * a, k * b, norm=norm), calibrated_fusion(a, b, norm=norm), atol=1e-5)

    def test_without_norm_scaling_does_change(self):
        torch.manual_seed(3)
        a, b = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7)
        assert not torch.allclose(calibrated_fusion(10 * a, 10 * b, norm="none"), calibrated_fusion(a, b, norm="none"), atol=1e-3)

    def test_batch_norm_couples_images_image_norm_does_not(self):
        torch.manual_seed(4)
        a, b = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7)
        a2, b2 = a.clone(), b.clone()
        a2[1] *= 20
        b2[1] *= 20
        assert torch.allclose(calibrated_fusion(a2, b2, norm="image")[0], calibrated_fusion(a, b, norm="image")[0], atol=1e-6)
        assert not torch.allclose(calibrated_fusion(a2, b2, norm="batch")[0], calibrated_fusion(a, b, norm="batch")[0], atol=1e-3)
        assert fusion_norm(a, b, "batch").dim() == 0

    def test_blank_sources_give_uniform_not_nan(self):
        y = calibrated_fusion(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3))
        assert torch.allclose(y, torch.full_like(y, 0.25))

    def test_exception(self):
        with pytest.raises(ValueError, match="one shape"):
            calibrated_fusion(torch.zeros(1, 4, 3, 3), torch.zeros(1, 3, 3, 3))
        with pytest.raises(ValueError, match="gamma"):
            calibrated_fusion(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3), gamma=1.5)


class TestEntropyFilter:
    @pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 0.9])
    def test_keeps_the_documented_share(self, alpha):
        torch.manual_seed(5)
        probs = torch.softmax(torch.randn(3, 6, 20, 17) * 3, 1)
        labels = entropy_filter(probs, alpha)
        n = 3 * 20 * 17
        kept = labels != 255
        assert int(kept.sum()) == math.floor((1 - alpha) * (n - 1)) + 1
        # Kept pixels are exactly the lowest-entropy ones, with their argmax.
        h = entropy(probs)
        assert h[kept].max() <= h[~kept].min() if (~kept).any() else True
        assert torch.equal(labels[kept], probs.argmax(1)[kept])

    def test_ties_at_the_threshold_are_kept(self):
        probs = torch.zeros(1, 3, 4, 4)
        probs[:, 0] = 0.6
        probs[:, 1] = 0.3
        probs[:, 2] = 0.1  # every pixel has the same entropy
        assert bool((entropy_filter(probs, 0.5) == 0).all())

    def test_valid_mask_and_image_scope(self):
        torch.manual_seed(6)
        probs = torch.softmax(torch.randn(2, 4, 10, 10) * 2, 1)
        probs[1] = torch.softmax(torch.randn(4, 10, 10) * 0.1, 0)  # image 1 far less confident
        valid = torch.ones(2, 10, 10, dtype=torch.bool)
        valid[:, :5] = False
        from noisyseg.strategies.pseudo_labeling import reliable_mask
        rel, _ = reliable_mask(probs, 0.5, valid)
        assert not rel[~valid].any()
        assert int(rel.sum()) == math.floor(0.5 * 99) + 1
        assert int(rel[0].sum()) > 45  # batch scope: the confident image keeps more than its half
        per_image = entropy_filter(probs, 0.5, scope="image")
        assert [int((per_image[i] != 255).sum()) for i in range(2)] == [50, 50]

    def test_alpha_schedule(self):
        assert alpha_schedule(0.2, 0, 80) == pytest.approx(0.2)
        assert alpha_schedule(0.2, 40, 80) == pytest.approx(0.1)
        assert alpha_schedule(0.2, 80, 80) == 0.0
        assert alpha_schedule(0.2, 100, 80) == 0.0
        with pytest.raises(ValueError):
            alpha_schedule(0.2, 1, 0)


class TestArgmaxAndCam:
    def test_argmax_floor(self):
        probs = torch.tensor([[[[0.9, 0.4]], [[0.1, 0.6]]]])
        assert argmax_labels(probs).tolist() == [[[0, 1]]]
        assert argmax_labels(probs, 0.7).tolist() == [[[0, 255]]]

    def test_cam_threshold_rules(self):
        cams = torch.zeros(1, 4, 1, 5)
        cams[0, 1] = torch.tensor([4.0, 1.6, 0.1, 0.0, 0.0])   # normalised: 1, .4, .025, 0, 0
        cams[0, 2] = torch.tensor([0.0, 1.0, 0.5, 0.0, 3.0])   # normalised: 0, .33, .17, 0, 1
        cams[0, 3] = torch.tensor([9.0, 9.0, 9.0, 9.0, 9.0])   # absent: never used
        tags = torch.tensor([[True, True, True, False]])        # tag of background 0 is ignored
        out = cam_threshold(cams, tags, fg=0.3, bg=0.05)
        assert out.tolist() == [[[1, 1, 255, 0, 2]]]
        none_bg = cam_threshold(cams, tags, fg=0.3, bg=0.05, background=None)
        # Without a background class, class 0 competes with its (zero) CAM and low pixels are ignored.
        assert none_bg.tolist() == [[[1, 1, 255, 255, 2]]]

    def test_cam_threshold_no_tags_is_all_background(self):
        out = cam_threshold(torch.rand(2, 3, 4, 4), torch.zeros(2, 3, dtype=torch.bool))
        assert bool((out == 0).all())

    def test_cam_threshold_exception(self):
        with pytest.raises(ValueError, match="tags"):
            cam_threshold(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, dtype=torch.bool))
        with pytest.raises(ValueError, match="background"):
            cam_threshold(torch.rand(1, 3, 4, 4), torch.ones(1, 3, dtype=torch.bool), background=3)


class TestPrototypes:
    def test_class_means_and_momentum(self):
        feats = torch.tensor([[[[1.0, 3.0], [10.0, 0.0]]]])   # (1, 1, 2, 2)
        labels = torch.tensor([[[0, 0], [1, 255]]])
        protos, counts = class_prototypes(feats, labels, 3)
        assert protos[:, 0].tolist() == [2.0, 10.0, 0.0]
        assert counts.tolist() == [2, 1, 0]
        prev = torch.tensor([[0.0], [0.0], [5.0]])
        seen = torch.tensor([True, False, True])
        new, now_seen = momentum_update(prev, seen, protos, counts, momentum=0.9)
        # class 0: 0.9 * 0 + 0.1 * 2; class 1 first seen takes its mean; class 2 absent keeps 5.
        assert new[:, 0].tolist() == pytest.approx([0.2, 10.0, 5.0])
        assert now_seen.tolist() == [True, True, True]

    def test_weights_are_softmax_of_negative_distance(self):
        feats = torch.tensor([[[[0.0]], [[0.0]]]])  # (1, 2, 1, 1) at the origin
        protos = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
        w = prototype_weights(feats, protos)[0, :, 0, 0]
        want = torch.softmax(torch.tensor([-5.0, -1.0, -2.0]), 0)
        assert torch.allclose(w, want)
        w2 = prototype_weights(feats, protos, torch.tensor([True, False, True]))[0, :, 0, 0]
        assert w2[1] == 0 and torch.isclose(w2.sum(), torch.tensor(1.0))

    def test_denoising_flips_a_pixel_near_another_prototype(self):
        probs = torch.tensor([0.55, 0.45]).view(1, 2, 1, 1).repeat(1, 1, 1, 2)
        feats = torch.tensor([[[[0.0, 10.0]]]])       # pixel 0 near prototype 0, pixel 1 near prototype 1
        protos = torch.tensor([[0.0], [10.0]])
        assert prototype_denoise(probs, feats, protos).argmax(1).tolist() == [[[0, 1]]]

    def test_strategy_keeps_state(self):
        torch.manual_seed(7)
        strat = PrototypeDenoised(alpha=0.0)
        probs = torch.softmax(torch.randn(2, 3, 8, 8) * 3, 1)
        feats = torch.randn(2, 4, 4, 4)
        out = strat.label(PseudoInputs(["a", "b"], probs=probs, features=feats))
        assert out.labels.shape == (2, 8, 8) and strat.prototypes.shape == (3, 4)
        first = strat.prototypes.clone()
        strat.label(PseudoInputs(["a", "b"], probs=probs, features=feats + 1))
        assert torch.allclose(strat.prototypes, 0.999 * first + 0.001 * (first + 1), atol=1e-5)


class TestClassBalanced:
    def test_each_class_keeps_its_most_confident_share(self):
        torch.manual_seed(3)
        probs = torch.softmax(torch.randn(2, 4, 9, 11) * 3, 1)
        probs[:, 3] *= 0.05  # a rare, unsure class: a global threshold would drop all of it
        probs = probs / probs.sum(1, keepdim=True)
        conf, arg = probs.max(1)
        for keep in (0.2, 0.5, 0.9):
            labels = class_balanced_labels(probs, keep)
            for c in arg.unique().tolist():
                mine = arg == c
                kept = mine & (labels == c)
                assert int(kept.sum()) == math.ceil(keep * int(mine.sum()))  # distinct confidences: no ties
                if not mine.all():  # every kept pixel is at least as confident as every dropped one
                    assert conf[kept].min() >= conf[mine & ~kept].max()
            assert ((labels == arg) | (labels == 255)).all()  # the argmax or ignore, never another class
        assert torch.equal(class_balanced_labels(probs, 1.0), arg)

    def test_rare_class_survives_where_a_global_threshold_drops_it(self):
        p = torch.tensor([[0.99, 0.98, 0.97, 0.96, 0.40, 0.30], [0.01, 0.02, 0.03, 0.04, 0.60, 0.70]])[None, :, None]
        assert argmax_labels(p, 0.95).tolist() == [[[0, 0, 0, 0, 255, 255]]]
        assert class_balanced_labels(p, 0.5).tolist() == [[[0, 0, 255, 255, 255, 1]]]

    def test_keep_must_be_a_share(self):
        with pytest.raises(ValueError, match="keep"):
            class_balanced_labels(torch.full((1, 2, 2, 2), 0.5), 0.0)
        from noisyseg.errors import ParameterError
        from noisyseg.strategies.pseudo_labeling.class_balanced import ClassBalanced
        with pytest.raises(ParameterError, match="class-balanced"):
            ClassBalanced(keep=0.0)
