"""Parts of the semi-supervised loop against closed forms: EMA, teacher passes, confidence masking
and its denominator, the presets."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from noisyseg.errors import ParameterError
from noisyseg.train.semi import SemiConfig, plan
from noisyseg.train.semi.distributed import Dist
from noisyseg.train.semi.losses import confidence_keep, masked_sum, pixel_loss
from noisyseg.train.semi.teacher import ema_decay, ema_update, teacher_mode


def test_ema_decay_schedule():
    assert ema_decay(0) == 0.0 and ema_decay(1) == 0.5 and ema_decay(9) == pytest.approx(0.9)
    assert ema_decay(99) == pytest.approx(0.99) and ema_decay(10**6) == 0.99
    assert ema_decay(10**6, max_decay=0.999) == 0.999
    with pytest.raises(ValueError):
        ema_decay(-1)


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Conv2d(4, 2, 1))


def test_ema_update_closed_form_on_parameters_only():
    torch.manual_seed(0)
    teacher, student = _net(), _net()
    student[1].running_mean.fill_(3.0)
    before_t = [p.clone() for p in teacher.parameters()]
    before_buf = teacher[1].running_mean.clone()
    ema_update(teacher, student, 0.9)
    for t0, t1, s in zip(before_t, teacher.parameters(), student.parameters()):
        torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * s)
    assert torch.equal(teacher[1].running_mean, before_buf)  # buffers untouched
    ema_update(teacher, student, 0.0, copy_buffers=True)  # the first update: a copy, buffers included
    for t, s in zip(teacher.state_dict().values(), student.state_dict().values()):
        assert torch.equal(t, s)


def test_teacher_mode_batch_statistics_no_dropout_no_grad():
    torch.manual_seed(0)
    net = _net().eval()
    x = torch.randn(4, 3, 5, 5) * 3 + 2
    with teacher_mode(net) as t:
        a, b = t(x), t(x)
        assert not a.requires_grad
    torch.testing.assert_close(a, b)  # dropout off: deterministic
    assert not net.training and not net[1].training  # modes restored
    assert float(net[1].num_batches_tracked) == 2  # running statistics updated by its own passes
    bn = net[1]
    ref = F.batch_norm(net[0](x), None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    with teacher_mode(net):
        torch.testing.assert_close(net[1](net[0](x)), ref)


def test_confidence_mask_keeps_low_confidence_pixels_in_the_denominator():
    logits = torch.tensor([[[[2.0, 0.0, 1.0, 0.5]], [[0.0, 1.0, 0.0, 0.5]]]])      # (1, 2, 1, 4)
    labels = torch.tensor([[[0, 1, 255, 0]]])
    conf = torch.tensor([[[0.99, 0.50, 0.99, 0.97]]])
    inside = torch.tensor([[[True, True, True, False]]])
    loss = pixel_loss("ce", logits, labels)
    ce = -F.log_softmax(logits, 1)
    torch.testing.assert_close(loss, torch.tensor([[[ce[0, 0, 0, 0], ce[0, 1, 0, 1], 0.0, ce[0, 0, 0, 3]]]]))
    keep = confidence_keep(labels, conf, 0.95)
    assert keep.tolist() == [[[True, False, False, True]]]
    num, den = masked_sum(loss, keep, inside)
    # only pixel 0 counts above; pixels 0-2 (not the one outside the view) below
    torch.testing.assert_close(num, ce[0, 0, 0, 0])
    assert float(den) == 3.0
    torch.testing.assert_close(Dist().mean(num, den), ce[0, 0, 0, 0] / 3)
    w = torch.tensor([[[2.0, 5.0, 5.0, 5.0]]])
    torch.testing.assert_close(masked_sum(loss, keep, inside, w)[0], 2 * ce[0, 0, 0, 0])
    none = masked_sum(loss, confidence_keep(labels, conf, 1.0), inside)
    assert float(none[0]) == 0.0 and float(none[1]) == 3.0


def test_pixel_losses_closed_forms():
    logits = torch.tensor([[[[1.0]], [[0.0]], [[-1.0]]]])
    labels = torch.tensor([[[1]]])
    p = torch.softmax(logits, 1)[0, :, 0, 0]
    p1 = float(p[1])
    assert float(pixel_loss("ce", logits, labels)) == pytest.approx(-math.log(p1))
    sce = -math.log(p1) + 0.1 * -math.log(1e-4) * (1 - p1)
    assert float(pixel_loss("sce", logits, labels)) == pytest.approx(sce, rel=1e-5)
    q = torch.tensor([0.2, 0.5, 0.3]).view(1, 3, 1, 1)
    assert float(pixel_loss("soft-ce", logits, labels, q)) == pytest.approx(float(-(q[0, :, 0, 0] * p.log()).sum()))
    with pytest.raises(ValueError, match="soft labels"):
        pixel_loss("soft-ce", logits, labels)


def _cfg(**kw):
    return SemiConfig(dataset="d", split="strong", out="o", unlabelled="weak", **kw)


def test_presets_and_overrides():
    u2pl = plan(_cfg(method="u2pl"))
    assert (u2pl.teacher, u2pl.pseudo_label, u2pl.weighting, u2pl.warmup_epochs) == ("ema", "entropy-filter", "adaptive", 1)
    assert u2pl.contrastive_weight == 0.1 and u2pl.strong.ops == ("cutmix",) and u2pl.strong.cutmix_area == (0.5, 0.5)
    uni = plan(_cfg(method="unimatch"))
    assert uni.views == 2 and uni.feature_dropout == 0.5 and uni.threshold == 0.95
    # (L_x + 0.25 L_s1 + 0.25 L_s2 + 0.5 L_fp) / 2
    assert (uni.weight_x, uni.weight_views, uni.weight_fp) == (0.5, (0.125, 0.125), 0.25)
    fix = plan(_cfg(method="fixmatch", threshold=0.8, strong_aug="colour,cutout", weighting="confidence"))
    assert fix.threshold == 0.8 and fix.strong.ops == ("colour", "cutout") and fix.weighting == "confidence"
    assert plan(_cfg(method="u2pl", weighting="none")).weighting is None
    assert u2pl.alpha_schedule and not uni.alpha_schedule
    assert plan(_cfg(method="unimatch", alpha_schedule=True)).alpha_schedule
    assert not plan(_cfg(method="u2pl", alpha_schedule=False)).alpha_schedule
    assert plan(_cfg(method="pseudoseg")).cls_weight == 1.0 and plan(_cfg(method="fixmatch")).cls_weight == 0.1


@pytest.mark.parametrize("kw,fragment", [
    (dict(method="nope"), "--method: expected one of"),
    (dict(method="u2pl", teacher="self"), "needs an EMA teacher"),
    (dict(method="fixmatch", teacher="student"), "--teacher: expected self or ema"),
    (dict(method="fixmatch", unsup_loss="mse"), "--unsup-loss"),
    (dict(method="fixmatch", threshold=1.5), "--threshold"),
    (dict(method="fixmatch", strong_aug="rotate"), "--strong-aug"),
    (dict(method="fixmatch", lr_scaling="sqrt"), "--lr-scaling"),
    (dict(method="u2pl", epochs=1), "warm-up"),
    (dict(method="fixmatch", unlabelled=None), "expected an unlabelled split"),
])
def test_plan_errors(kw, fragment):
    base = {"unlabelled": "weak"} | kw
    with pytest.raises(ParameterError, match=fragment):
        plan(SemiConfig(dataset="d", split="strong", out="o", **base))
