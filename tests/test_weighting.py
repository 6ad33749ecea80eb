"""Weighting functions: URN's levels and weights, U2PL's adaptive λ_u, confidence; urn as detection."""

import math

import numpy as np
import pytest
import torch

from noisyseg.strategies.weighting import (WeightInputs, adaptive_weight, confidence_weights, urn_uncertainty,
                                           urn_uncertainty_batch, urn_weights)

S = 6
# Sample variances of S binary values with k ones: k (S - k) / (S (S - 1)); 4 distinct levels for S = 6.
LEVELS = sorted({k * (S - k) / (S * (S - 1)) for k in range(S + 1)})


def allowed_normalised_levels():
    """Min-max normalisation divides by the top level present, whichever it is."""
    return {0.0} | {v / top for top in LEVELS if top > 0 for v in LEVELS if v <= top}


def _probs(seed, C=4, H=24, W=24, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(C, H, W, generator=g) * scale, 0)


class TestUrnUncertainty:
    @pytest.mark.parametrize("crf", [False, True])
    def test_variance_takes_only_the_levels_six_masks_allow(self, crf):
        probs = _probs(0)
        image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
        u = urn_uncertainty(probs, image if crf else None, crf=crf)
        assert u.shape == (24, 24) and float(u.min()) == 0.0 and float(u.max()) == 1.0
        values = set(np.round(u.flatten().numpy().astype(np.float64), 5).tolist())
        allowed = {round(v, 5) for v in allowed_normalised_levels()}
        assert values <= allowed, values - allowed
        # Normalised by the top level 3/10, the levels are {0, 5/9, 8/9, 1}.
        assert values <= {0.0, round(5 / 9, 5), round(8 / 9, 5), 1.0}

    def test_hard_weights_only_t_and_one_soft_in_between(self):
        u = urn_uncertainty(_probs(1), crf=False)
        hard = urn_weights(u, t=0.05, mode="hard")
        assert bool((torch.isclose(hard, torch.tensor(0.05)) | (hard == 1.0)).all())
        assert hard.unique().numel() == 2
        # Only the top level (U = 1, W = 0) falls below t.
        assert torch.equal(hard == 0.05, u > 0.95)
        soft = urn_weights(u, t=0.05, mode="soft")
        assert float(soft.min()) >= 0.05 and float(soft.max()) <= 1.0
        assert torch.allclose(soft, (1 - u).clamp_min(0.05))
        with pytest.raises(ValueError, match="mode"):
            urn_weights(u, mode="medium")

    def test_one_present_class_is_certain(self):
        probs = _probs(2)
        labels = torch.full((24, 24), 2, dtype=torch.long)
        labels[0, 0] = 255
        assert float(urn_uncertainty(probs, crf=False, labels=labels).abs().max()) == 0.0

    def test_scaling_flips_pixels_near_the_decision_boundary(self):
        # Two classes, p0 ramps from 0.05 to 0.95: scaling by s < 1 grows class 0, s > 1 shrinks it,
        # so the uncertain band lies where p0 is mid-range, and confident ends stay certain.
        p0 = torch.linspace(0.05, 0.95, 40).view(1, 40).repeat(4, 1)
        probs = torch.stack([p0, 1 - p0])
        u = urn_uncertainty(probs, crf=False)
        assert float(u[:, :5].max()) == 0.0 and float(u[:, -5:].max()) == 0.0
        assert float(u[:, 15:25].max()) == 1.0

    def test_single_is_the_batch_of_one_and_pool_matches_loop(self):
        probs = torch.stack([_probs(3, H=16, W=16), _probs(4, H=16, W=16)])
        images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8))
        fast = urn_uncertainty_batch(probs, crf=False)
        for i in range(2):
            assert torch.equal(fast[i], urn_uncertainty(probs[i], crf=False))
        loop = urn_uncertainty_batch(probs, images, crf=True, iterations=2, workers=1)
        pooled = urn_uncertainty_batch(probs, images, crf=True, iterations=2, workers=2)
        assert torch.equal(loop, pooled)
        assert torch.equal(loop[1], urn_uncertainty(probs[1], images[1], iterations=2))
        assert torch.equal(loop[1], urn_uncertainty(probs[1], images[1].numpy(), iterations=2))  # an array image too
        with pytest.raises(ValueError, match=r"urn_uncertainty: probs must be \(C, H, W\)"):
            urn_uncertainty(probs)

    def test_batched_argmax_path_matches_the_papers_recipe(self):
        """Without the CRF the batch runs in log space on the whole batch; the recipe, per image in
        numpy: keep the present channels, raise channel k to each power s, mask argmax == k, sample
        variance over the S masks, max over classes, min-max normalised."""
        probs = torch.stack([_probs(7, H=12, W=14), _probs(8, H=12, W=14, scale=0.7)])
        labels = probs.argmax(1)
        labels[1][labels[1] == 2] = 0  # image 1's labels lack class 2: its channel is dropped
        labels[1, 0, 0] = 255
        scales = (0.3, 0.6, 2.0, 3.0)
        got = urn_uncertainty_batch(probs, scales=scales, crf=False, labels=labels)
        for i in range(2):
            p = probs[i].double().numpy()
            present = sorted(set(labels[i].flatten().tolist()) - {255})
            sub = p[present]
            var = []
            for k in range(len(present)):
                masks = []
                for s in scales:
                    scaled = sub.copy()
                    scaled[k] = scaled[k] ** s
                    masks.append(scaled.argmax(0) == k)
                var.append(np.var(np.stack(masks).astype(np.float64), axis=0, ddof=1))
            u = np.max(var, axis=0)
            span = u.max() - u.min()
            want = (u - u.min()) / span if span > 0 else np.zeros_like(u)
            np.testing.assert_allclose(got[i].numpy(), want, atol=1e-6)


class TestAdaptiveAndConfidence:
    def test_adaptive_lambda(self):
        kept = torch.zeros(2, 4, 5, dtype=torch.bool)
        kept[0, :2] = True  # 10 of 40 kept
        assert float(adaptive_weight(kept, eta=0.5)) == pytest.approx(0.5 * 40 / 10)

    def test_adaptive_strategy_map(self):
        from noisyseg.strategies.weighting.adaptive import Adaptive

        probs = torch.softmax(torch.randn(2, 3, 10, 10) * 3, 1)
        w = Adaptive(eta=1.0, alpha=0.5).weigh(WeightInputs(["a", "b"], probs))
        kept = w > 0
        n_kept = math.floor(0.5 * 199) + 1
        assert int(kept.sum()) == n_kept
        assert torch.allclose(w[kept], torch.full((n_kept,), 200 / n_kept))
        # A loss averaged over all pixels with these weights equals λ_u x the mean over kept pixels.
        assert float(w.mean()) == pytest.approx(1.0)

    def test_confidence(self):
        probs = torch.softmax(torch.randn(1, 3, 4, 4), 1)
        assert torch.allclose(confidence_weights(probs), probs.max(1).values)
        labels = torch.randint(0, 3, (1, 4, 4))
        labels[0, 0, 0] = 255
        w = confidence_weights(probs, labels, of_label=True)
        assert float(w[0, 0, 0]) == 0.0
        assert torch.allclose(w[0, 1], probs[0, :, 1].gather(0, labels[0, 1][None]).squeeze(0))


class TestUrnDetection:
    def test_flags_are_the_floor_weight_pixels_and_never_ignored(self):
        from noisyseg.strategies.detection.urn import UrnDetector

        probs = torch.stack([_probs(5, H=16, W=16), _probs(6, H=16, W=16)])
        labels = probs.argmax(1)
        labels[:, :2] = 255
        det = UrnDetector(crf=False).detect(probs, labels)
        assert det.flags.dtype == torch.bool and not det.flags[labels == 255].any()
        assert torch.equal(det.flags, (det.scores > 0.95) & (labels != 255))
        assert det.flags.any()
