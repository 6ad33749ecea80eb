"""CAMs and the self-attention Grad-CAM module."""

import torch
import torch.nn.functional as F

from noisyseg.models import SelfAttentionGradCAM
from noisyseg.models.cam import class_activation_maps, normalise_cams
from noisyseg.models.sgc import cam_value


class TestClassActivationMaps:
    def test_one_normalisation_for_predict_and_cam_threshold(self):
        import noisyseg.models.sgc as sgc
        from noisyseg.strategies.pseudo_labeling.cam_threshold import normalise_cams as used_by_cam_threshold

        assert used_by_cam_threshold is normalise_cams and sgc.class_activation_maps is class_activation_maps
        feats, weight = torch.randn(2, 8, 5, 6), torch.randn(3, 8)
        raw = torch.einsum("bkhw,ck->bchw", feats, weight)
        assert torch.equal(class_activation_maps(feats, weight), normalise_cams(F.relu(raw)))

    def test_zero_for_absent_classes_max_one_for_present(self):
        torch.manual_seed(0)
        feats = torch.rand(2, 8, 5, 6)          # positive features
        weight = torch.rand(3, 8)               # positive weights: every CAM is positive somewhere
        present = torch.tensor([[True, False, True], [False, True, False]])
        cams = class_activation_maps(feats, weight, present)
        assert cams.shape == (2, 3, 5, 6)
        assert bool((cams[~present] == 0).all())
        assert torch.allclose(cams[present].amax((1, 2)), torch.ones(int(present.sum())))
        assert float(cams.min()) >= 0.0

    def test_formula_and_no_nan_when_all_negative(self):
        feats = torch.rand(1, 4, 3, 3)
        weight = torch.tensor([[1.0, 0.0, 0.0, 0.0], [-1.0, -1.0, -1.0, -1.0]])
        cams = class_activation_maps(feats, weight)
        assert torch.allclose(cams[0, 0], feats[0, 0] / feats[0, 0].max())
        assert not torch.isnan(cams).any() and bool((cams[0, 1] == 0).all())
        assert not torch.isnan(class_activation_maps(torch.zeros(1, 4, 3, 3), weight)).any()


class TestSGC:
    def test_value_background_channel(self):
        cams = torch.tensor([0.0, 0.2, 0.7]).view(1, 3, 1, 1)
        v = cam_value(cams, background=0)
        assert torch.allclose(v.flatten(), torch.tensor([0.3, 0.2, 0.7]))
        assert torch.equal(cam_value(cams, background=None), cams)

    def test_uniform_attention_adds_the_mean_value(self):
        torch.manual_seed(1)
        sgc = SelfAttentionGradCAM(in_channels=6, num_classes=3, embed_dim=4, background=None).eval()
        for conv in (sgc.key, sgc.query):
            torch.nn.init.zeros_(conv.weight)
            torch.nn.init.zeros_(conv.bias)
        torch.nn.init.eye_(sgc.out[0].weight.view(3, 3))
        cams = torch.rand(2, 3, 4, 5)
        out = sgc([torch.randn(2, 6, 4, 5)], cams)
        bn = sgc.out[1]
        want = (cams + cams.mean((2, 3), keepdim=True) - bn.running_mean.view(1, 3, 1, 1)) / torch.sqrt(
            bn.running_var.view(1, 3, 1, 1) + bn.eps)
        assert torch.allclose(out, want, atol=1e-5)

    def test_hypercolumn_and_training_lowers_ce(self):
        torch.manual_seed(2)
        B, h, w = 4, 6, 6
        target = torch.randint(0, 3, (B, h, w))
        # Features that reveal the class; CAMs only partly right.
        stage3 = F.one_hot(target, 3).permute(0, 3, 1, 2).float() + 0.1 * torch.randn(B, 3, h, w)
        stage4 = torch.randn(B, 5, h // 2, w // 2)
        cams = torch.rand(B, 3, h, w)
        sgc = SelfAttentionGradCAM(in_channels=8, num_classes=3, embed_dim=8, background=0)
        opt = torch.optim.Adam(sgc.parameters(), lr=0.05)
        losses = []
        for _ in range(60):
            out = sgc([stage3, stage4], cams)
            assert out.shape == (B, 3, h, w)
            loss = F.cross_entropy(out, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.7 * losses[0]
