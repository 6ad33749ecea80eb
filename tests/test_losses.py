"""Symmetric CE, soft-label CE and pixel InfoNCE against closed forms."""

import math

import pytest
import torch
import torch.nn.functional as F

from noisyseg.losses import pixel_info_nce, soft_cross_entropy, symmetric_cross_entropy


class TestPixelInfoNCE:
    def test_closed_form(self):
        torch.manual_seed(0)
        M, N, D, tau = 5, 7, 4, 0.5
        a, pos, neg = torch.randn(M, D, dtype=torch.float64), torch.randn(M, D, dtype=torch.float64), \
            torch.randn(M, N, D, dtype=torch.float64)
        want = 0.0
        for i in range(M):
            cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))
            sp = math.exp(cos(a[i], pos[i]) / tau)
            sn = sum(math.exp(cos(a[i], neg[i, j]) / tau) for j in range(N))
            want += -math.log(sp / (sp + sn))
        assert float(pixel_info_nce(a, pos, neg, tau)) == pytest.approx(want / M, rel=1e-10)

    def test_orthogonal_unit_case(self):
        # s+ = 1, two negatives with s- = 0 and -1: -log(e^2 / (e^2 + 1 + e^-2))
        a = torch.tensor([[1.0, 0.0]])
        neg = torch.tensor([[[0.0, 3.0], [-2.0, 0.0]]])
        want = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
        assert float(pixel_info_nce(a, torch.tensor([5.0, 0.0]), neg, 0.5)) == pytest.approx(want, rel=1e-6)

    def test_shared_positive_equals_repeated_and_scale_invariance(self):
        torch.manual_seed(1)
        a, proto, neg = torch.randn(6, 8), torch.randn(8), torch.randn(6, 3, 8)
        shared = pixel_info_nce(a, proto, neg)
        assert torch.allclose(shared, pixel_info_nce(a, proto.expand(6, 8).clone(), neg))
        assert torch.allclose(shared, pixel_info_nce(3 * a, 0.1 * proto, 7 * neg), atol=1e-6)

    def test_gradient_and_empty(self):
        a = torch.randn(4, 3, requires_grad=True)
        pixel_info_nce(a, torch.randn(3), torch.randn(4, 2, 3)).backward()
        assert a.grad is not None and torch.isfinite(a.grad).all()
        empty = pixel_info_nce(torch.zeros(0, 3, requires_grad=True), torch.randn(3), torch.zeros(0, 2, 3))
        assert float(empty.detach()) == 0.0 and empty.requires_grad

    def test_exception(self):
        with pytest.raises(ValueError, match="negatives"):
            pixel_info_nce(torch.randn(4, 3), torch.randn(3), torch.randn(4, 3))
        with pytest.raises(ValueError, match="temperature"):
            pixel_info_nce(torch.randn(4, 3), torch.randn(3), torch.randn(4, 2, 3), temperature=0)


class TestSymmetricCE:
    def test_forward_term_alone_is_cross_entropy(self):
        torch.manual_seed(2)
        logits, labels = torch.randn(2, 5, 6, 6), torch.randint(0, 5, (2, 6, 6))
        labels[0, 0] = 255
        got = symmetric_cross_entropy(logits, labels, xi1=1.0, xi2=0.0)
        assert torch.allclose(got, F.cross_entropy(logits, labels, ignore_index=255))

    def test_reverse_term_closed_form(self):
        torch.manual_seed(3)
        logits, labels = torch.randn(1, 4, 3, 3), torch.randint(0, 4, (1, 3, 3))
        p = torch.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
        want = (-math.log(1e-4) * (1 - p)).mean()
        assert torch.allclose(symmetric_cross_entropy(logits, labels, xi1=0.0, xi2=1.0), want, atol=1e-6)

    def test_default_mix_and_weights(self):
        torch.manual_seed(4)
        logits, labels = torch.randn(1, 3, 4, 4), torch.randint(0, 3, (1, 4, 4))
        full = symmetric_cross_entropy(logits, labels)
        parts = symmetric_cross_entropy(logits, labels, 1, 0) + 0.1 * symmetric_cross_entropy(logits, labels, 0, 1)
        assert torch.allclose(full, parts, atol=1e-6)
        zero_w = symmetric_cross_entropy(logits, labels, weights=torch.zeros(1, 4, 4))
        assert float(zero_w) == 0.0


class TestSoftCE:
    def test_one_hot_targets_equal_cross_entropy(self):
        torch.manual_seed(5)
        logits, labels = torch.randn(2, 4, 5, 5), torch.randint(0, 4, (2, 5, 5))
        onehot = F.one_hot(labels, 4).permute(0, 3, 1, 2).float()
        assert torch.allclose(soft_cross_entropy(logits, onehot), F.cross_entropy(logits, labels), atol=1e-6)

    def test_valid_mask_and_minimum_at_target(self):
        q = torch.softmax(torch.randn(1, 3, 2, 2), 1)
        best = soft_cross_entropy(torch.log(q), q)
        assert float(best) < float(soft_cross_entropy(torch.zeros(1, 3, 2, 2), q)) + 1e-6
        # Entropy of q is the minimum (Gibbs).
        assert torch.isclose(best, -(q * q.log()).sum(1).mean(), atol=1e-6)
        valid = torch.tensor([[[True, False], [False, False]]])
        assert torch.isclose(soft_cross_entropy(torch.log(q), q, valid=valid), -(q * q.log()).sum(1)[0, 0, 0], atol=1e-6)
