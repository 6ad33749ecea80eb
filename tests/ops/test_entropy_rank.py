import math

import numpy as np
import pytest
import torch

from noisyseg.ops import entropy_rank, entropy_rank_reference
from noisyseg.ops.entropy_rank import exact_quantile
from conftest import needs_kernel as kernel_marker

needs_kernel = kernel_marker("entropy_rank")


def naive(x: torch.Tensor, is_logits: bool, valid, q):
    """Loops over pixels in float64 with numpy's quantile: independent of both implementations."""
    x = x.double()
    b, c, h, w = x.shape
    ent = np.zeros((b, h, w))
    rank = np.zeros((b, c, h, w), dtype=np.int64)
    for i in range(b):
        for y in range(h):
            for z in range(w):
                v = x[i, :, y, z].tolist()
                p = torch.softmax(torch.tensor(v), 0).tolist() if is_logits else v
                ent[i, y, z] = max(0.0, -sum(pk * math.log(pk) for pk in p if pk > 0))
                for r, k in enumerate(sorted(range(c), key=lambda k: (-v[k], k))):
                    rank[i, k, y, z] = r
    sel = ent if valid is None else ent[valid.numpy()]
    return ent, (np.quantile(sel, q) if q is not None else None), rank


def make_logits(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 3
    if shape[1] > 1:
        x[:, 1] = x[:, 0]  # exact ties between classes 0 and 1 everywhere
    return x.to(dtype)


class TestReference:
    @pytest.mark.parametrize("is_logits", [True, False])
    def test_smoke_against_naive(self, is_logits):
        x = make_logits((2, 5, 4, 3))
        if not is_logits:
            x = torch.softmax(x, 1)
            x[0, 2, 0, 0] = 0.0  # 0 log 0 = 0
        valid = torch.rand(2, 4, 3, generator=torch.Generator().manual_seed(1)) > 0.3
        out = entropy_rank_reference(x, is_logits, valid, 0.3)
        ent, thr, rank = naive(x, is_logits, valid, 0.3)
        torch.testing.assert_close(out.entropy, torch.from_numpy(ent).float(), atol=1e-5, rtol=1e-5)
        assert out.threshold.item() == pytest.approx(thr, abs=1e-5)
        assert torch.equal(out.rank.long(), torch.from_numpy(rank))

    def test_exact_quantile_beyond_torch_cap(self):
        n = 2**24 + 7
        values = torch.randperm(n, generator=torch.Generator().manual_seed(0)).float()
        for q in (0.0, 0.3, 1.0):
            assert exact_quantile(values, q).item() == pytest.approx(q * (n - 1), rel=1e-6)

    def test_no_valid_pixel_gives_nan(self):
        out = entropy_rank_reference(torch.randn(1, 3, 2, 2), valid=torch.zeros(1, 2, 2, dtype=torch.bool),
                                     quantile=0.5)
        assert math.isnan(out.threshold.item())

    def test_exception(self):
        with pytest.raises(ValueError, match=r"x must be \[B, C, H, W\]"):
            entropy_rank(torch.randn(3, 4, 5))
        with pytest.raises(ValueError, match="1 to 255 classes"):
            entropy_rank(torch.randn(1, 256, 2, 2))
        with pytest.raises(ValueError, match="valid must be bool"):
            entropy_rank(torch.randn(1, 3, 2, 2), valid=torch.ones(1, 2, 3, dtype=torch.bool))
        with pytest.raises(ValueError, match="quantile must be in"):
            entropy_rank(torch.randn(1, 3, 2, 2), quantile=1.5)


@needs_kernel
class TestKernel:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
    @pytest.mark.parametrize("num_classes", [1, 2, 21, 60, 255])
    def test_matches_reference(self, dtype, num_classes):
        x = make_logits((2, num_classes, 13, 9), dtype)
        valid = torch.rand(2, 13, 9, generator=torch.Generator().manual_seed(2)) > 0.5
        for is_logits in (True, False):
            xi = x if is_logits else torch.softmax(x.float(), 1).to(dtype)
            got = entropy_rank(xi, is_logits, valid, 0.37)
            ref = entropy_rank_reference(xi, is_logits, valid, 0.37)
            torch.testing.assert_close(got.entropy, ref.entropy, atol=2e-5, rtol=1e-5)
            assert torch.equal(got.rank, ref.rank)
            # the threshold is the exact quantile of the kernel's own entropies
            exact = np.quantile(got.entropy[valid].double().numpy(), 0.37)
            assert got.threshold.item() == pytest.approx(exact, rel=1e-6, abs=1e-7)

    def test_ties_rank_by_class_id(self):
        x = torch.zeros(1, 7, 2, 2)
        x[0, 4] = 1.0
        got = entropy_rank(x)
        assert got.rank[0, :, 0, 0].tolist() == [1, 2, 3, 4, 0, 5, 6]
        assert got.entropy[0, 0, 0].item() == pytest.approx(entropy_rank_reference(x).entropy[0, 0, 0].item())

    def test_underflowing_probabilities_keep_logit_order(self):
        x = torch.tensor([0.0, -200.0, -300.0]).view(1, 3, 1, 1)
        assert entropy_rank(x).rank.view(-1).tolist() == [0, 1, 2]

    def test_non_contiguous(self):
        x = make_logits((2, 21, 16, 12))
        valid = torch.rand(2, 12, 16) > 0.4
        for xi, vi in ((x.to(memory_format=torch.channels_last), valid.transpose(1, 2)),
                       (x[:, :, ::2, 1::2], valid.transpose(1, 2)[:, ::2, 1::2])):
            got = entropy_rank(xi, valid=vi, quantile=0.9)
            ref = entropy_rank(xi.contiguous(), valid=vi.contiguous(), quantile=0.9)
            assert torch.equal(got.entropy, ref.entropy) and torch.equal(got.rank, ref.rank)
            assert torch.equal(got.threshold, ref.threshold)

    @pytest.mark.parametrize("q", [0.0, 1.0, 0.5])
    def test_quantile_edges(self, q):
        x = make_logits((1, 4, 10, 10))
        got = entropy_rank(x, quantile=q)
        assert got.threshold.item() == pytest.approx(float(np.quantile(got.entropy.numpy(), q)), rel=1e-6)
        assert entropy_rank(x).threshold is None
        none = entropy_rank(x, valid=torch.zeros(1, 10, 10, dtype=torch.bool), quantile=q)
        assert math.isnan(none.threshold.item())

    def test_single_valid_pixel(self):
        x = make_logits((1, 4, 3, 3))
        valid = torch.zeros(1, 3, 3, dtype=torch.bool)
        valid[0, 1, 2] = True
        got = entropy_rank(x, valid=valid, quantile=0.7)
        assert got.threshold.item() == got.entropy[0, 1, 2].item()

    @pytest.mark.slow
    def test_exact_beyond_two_pow_24_pixels(self):
        x = torch.rand(1, 2, 4097, 4097, generator=torch.Generator().manual_seed(3))  # 2**24 + 8193 pixels
        got = entropy_rank(x, is_logits=False, quantile=0.61)
        ent = got.entropy.reshape(-1)
        n = ent.numel()
        pos = 0.61 * (n - 1)
        lo = torch.kthvalue(ent, int(pos) + 1).values.double()
        hi = torch.kthvalue(ent, int(pos) + 2).values.double()
        assert got.threshold.item() == pytest.approx((lo + (hi - lo) * (pos - int(pos))).item(), rel=1e-6)

    def test_not_differentiable(self):
        x = torch.randn(1, 3, 4, 4, requires_grad=True)
        out = entropy_rank(x, quantile=0.5)
        assert not out.entropy.requires_grad and not out.threshold.requires_grad

    def test_exception_messages_from_kernel(self):
        op = torch.ops.noisyseg.entropy_rank
        with pytest.raises(RuntimeError, match=r"entropy_rank: x must be \[B, C, H, W\]"):
            op(torch.randn(2, 3, 4), True, None, None)
        with pytest.raises(RuntimeError, match=r"entropy_rank: valid must be \[B, H, W\]"):
            op(torch.randn(1, 3, 4, 4), True, torch.ones(1, 4, 5, dtype=torch.bool), 0.5)
        with pytest.raises(RuntimeError, match=r"entropy_rank: quantile must be in \[0, 1\]"):
            op(torch.randn(1, 3, 4, 4), True, None, -0.1)
        with pytest.raises(RuntimeError, match="entropy_rank: x must be a floating tensor"):
            op(torch.zeros(1, 3, 4, 4, dtype=torch.int32), True, None, None)


@needs_kernel
@pytest.mark.cuda
class TestCuda:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
    @pytest.mark.parametrize("num_classes", [1, 3, 19, 21, 40, 100, 255])
    def test_matches_cpu(self, dtype, num_classes):
        x = make_logits((2, num_classes, 31, 17), dtype)
        valid = torch.rand(2, 31, 17, generator=torch.Generator().manual_seed(4)) > 0.5
        for is_logits in (True, False):
            xi = x if is_logits else torch.softmax(x.float(), 1).to(dtype)
            got = entropy_rank(xi.cuda(), is_logits, valid.cuda(), 0.37)
            ref = entropy_rank(xi, is_logits, valid, 0.37)
            torch.testing.assert_close(got.entropy.cpu(), ref.entropy, atol=2e-5, rtol=1e-5)
            assert torch.equal(got.rank.cpu(), ref.rank)
            exact = np.quantile(got.entropy.cpu()[valid].double().numpy(), 0.37)
            assert got.threshold.device.type == "cuda"
            assert got.threshold.item() == pytest.approx(exact, rel=1e-6, abs=1e-7)

    def test_large_exact_and_no_sync(self):
        x = torch.randn(2, 19, 3000, 3000, device="cuda")  # 18M pixels, above torch.quantile's cap
        torch.cuda.set_sync_debug_mode("error")
        try:
            got = entropy_rank(x, quantile=0.8)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert got.threshold.item() == pytest.approx(exact_quantile(got.entropy.reshape(-1), 0.8).item(), rel=1e-6)
        none = entropy_rank(x[:, :, :8], valid=torch.zeros(2, 8, 3000, dtype=torch.bool, device="cuda"), quantile=0.5)
        assert math.isnan(none.threshold.item())
