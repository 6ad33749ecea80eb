import pytest
import torch
import torch.nn.functional as F

from noisyseg.ops import superpixel_pool, superpixel_pool_reference
from conftest import needs_kernel as kernel_marker

needs_kernel = kernel_marker("superpixel_pool")

SIZES = [(4, 5, 17, 23), (8, 8, 8, 8), (10, 7, 5, 3), (1, 1, 4, 4), (3, 4, 1, 1), (2, 9, 2, 30)]


def naive(features, segments, n, align_corners):
    """The definition: F.interpolate to the segment map's size, then a scatter mean in float64."""
    B, D = features.shape[:2]
    up = F.interpolate(features.double(), size=segments.shape[-2:], mode="bilinear", align_corners=align_corners)
    sums = torch.zeros(B, n, D, dtype=torch.float64)
    counts = torch.zeros(B, n, dtype=torch.long)
    for b in range(B):
        seg = segments[b].reshape(-1).long()
        keep = seg >= 0
        sums[b].index_add_(0, seg[keep], up[b].reshape(D, -1).t()[keep])
        counts[b] += torch.bincount(seg[keep], minlength=n)
    return sums / counts.clamp_min(1)[..., None], counts


def make(B, D, h, w, H, W, n=9, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(B, D, h, w, generator=g).to(dtype)
    segments = torch.randint(-1, n, (B, H, W), generator=g)
    return features, segments


def tol(dtype):
    return {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-5, torch.float64: 1e-10}[dtype]


class TestReference:
    @pytest.mark.parametrize("align_corners", [False, True])
    @pytest.mark.parametrize("size", SIZES)
    def test_smoke_against_naive(self, size, align_corners):
        features, segments = make(2, 3, *size, dtype=torch.float64)
        means, counts = superpixel_pool_reference(features, segments, 10, align_corners)
        want, want_counts = naive(features, segments, 10, align_corners)
        torch.testing.assert_close(means, want, atol=1e-12, rtol=1e-12)
        assert torch.equal(counts, want_counts)

    def test_cardinality_default_num_segments(self):
        features, segments = make(2, 4, 3, 3, 6, 6, n=5)
        segments[0, 0, 0] = 6
        means, counts = superpixel_pool_reference(features, segments)
        assert means.shape == (2, 7, 4) and counts.shape == (2, 7)

    def test_gradient_matches_naive(self):
        features, segments = make(2, 3, 4, 5, 9, 7, dtype=torch.float64)
        features.requires_grad_(True)
        weights = torch.randn(2, 10, 3, dtype=torch.float64)
        (superpixel_pool_reference(features, segments, 10)[0] * weights).sum().backward()
        ours = features.grad.clone()
        features.grad = None
        (naive(features, segments, 10, False)[0] * weights).sum().backward()
        torch.testing.assert_close(ours, features.grad)

    def test_exception(self):
        features, segments = make(1, 2, 3, 3, 6, 6, n=5)
        with pytest.raises(ValueError, match=r"segments must be \[B, H, W\]"):
            superpixel_pool(features, segments[0])
        with pytest.raises(ValueError, match="features must be"):
            superpixel_pool(features[0], segments)
        with pytest.raises(TypeError, match="integer"):
            superpixel_pool(features, segments.float())
        with pytest.raises(RuntimeError, match="num_segments"):
            superpixel_pool_reference(features, segments, 3)


@needs_kernel
class TestKernel:
    @pytest.mark.parametrize("align_corners", [False, True])
    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
    def test_smoke_against_naive(self, size, align_corners, dtype):
        features, segments = make(2, 5, *size, dtype=dtype)
        means, counts = torch.ops.noisyseg.superpixel_pool(features, segments, 10, align_corners)
        want, want_counts = naive(features, segments, 10, align_corners)
        assert means.dtype == dtype and counts.dtype == torch.int64
        torch.testing.assert_close(means.double(), want, atol=tol(dtype), rtol=tol(dtype))
        assert torch.equal(counts, want_counts)

    @pytest.mark.parametrize("seg_dtype", [torch.int32, torch.int16, torch.uint8])
    def test_non_contiguous_and_segment_dtypes(self, seg_dtype):
        features, segments = make(3, 6, 5, 7, 12, 11)
        features = features.transpose(2, 3).contiguous().transpose(2, 3)[:, ::2]  # strided channels
        segments = segments.clamp_min(0).to(seg_dtype).transpose(1, 2).contiguous().transpose(1, 2)
        means, counts = superpixel_pool(features, segments, 10)
        want, want_counts = naive(features, segments, 10, False)
        torch.testing.assert_close(means.double(), want, atol=1e-5, rtol=1e-5)
        assert torch.equal(counts, want_counts)

    def test_empty_segments_and_ignored_pixels(self):
        features, _ = make(2, 4, 3, 3, 6, 6)
        segments = torch.full((2, 6, 6), -1)
        segments[0, :3] = 2  # segment 0, 1, 3 empty in image 0; image 1 all ignored
        means, counts = superpixel_pool(features, segments, 4)
        assert counts.tolist() == [[0, 0, 18, 0], [0, 0, 0, 0]]
        assert means[0, [0, 1, 3]].abs().max() == 0 and means[1].abs().max() == 0
        torch.testing.assert_close(means.double(), naive(features, segments, 4, False)[0], atol=1e-5, rtol=1e-5)

    def test_cardinality(self):
        features, segments = make(2, 4, 3, 3, 6, 6, n=5)
        assert [t.shape for t in superpixel_pool(features, segments)] == [(2, 5, 4), (2, 5)]
        assert [t.shape for t in superpixel_pool(features, segments, 8)] == [(2, 8, 4), (2, 8)]
        empty = torch.ops.noisyseg.superpixel_pool(features, torch.full((2, 6, 6), -1), 0, False)
        assert [t.shape for t in empty] == [(2, 0, 4), (2, 0)]

    @pytest.mark.parametrize("align_corners", [False, True])
    @pytest.mark.parametrize("size", [(4, 5, 9, 11), (5, 4, 3, 2)])
    def test_gradcheck(self, size, align_corners):
        features, segments = make(2, 3, *size, dtype=torch.float64)
        features.requires_grad_(True)
        fn = lambda f: torch.ops.noisyseg.superpixel_pool(f, segments, 10, align_corners)[0]
        assert torch.autograd.gradcheck(fn, (features,))

    def test_gradient_matches_reference_float32(self):
        features, segments = make(2, 16, 8, 8, 40, 36, n=30)
        features.requires_grad_(True)
        weights = torch.randn(2, 30, 16)
        (superpixel_pool(features, segments, 30)[0] * weights).sum().backward()
        ours = features.grad.clone()
        features.grad = None
        (superpixel_pool_reference(features, segments, 30)[0] * weights).sum().backward()
        torch.testing.assert_close(ours, features.grad, atol=1e-5, rtol=1e-5)

    def test_exception(self):
        features, segments = make(1, 2, 3, 3, 6, 6, n=5)
        op = torch.ops.noisyseg.superpixel_pool
        with pytest.raises(RuntimeError, match=r"superpixel_pool: segments must be \[B, H, W\]"):
            op(features, segments[0], 5, False)
        with pytest.raises(RuntimeError, match="superpixel_pool: features must be a floating tensor"):
            op(features.long(), segments, 5, False)
        with pytest.raises(RuntimeError, match=r"superpixel_pool: segment id [34] is >= num_segments \(3\)"):
            op(features, segments, 3, False)
        with pytest.raises(RuntimeError, match="batch"):
            op(features, segments.expand(2, -1, -1), 5, False)


@pytest.mark.cuda
class TestCuda:
    @pytest.mark.parametrize("align_corners", [False, True])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
    def test_smoke_against_naive(self, align_corners, dtype):
        features, segments = make(2, 37, 5, 7, 19, 23, dtype=dtype)
        means, counts = superpixel_pool(features.cuda(), segments.cuda(), 10, align_corners)
        want, want_counts = naive(features, segments, 10, align_corners)
        torch.testing.assert_close(means.cpu().double(), want, atol=tol(dtype), rtol=tol(dtype))
        assert torch.equal(counts.cpu(), want_counts)

    def test_gradcheck(self):
        features, segments = make(2, 3, 4, 5, 9, 11, dtype=torch.float64)
        features = features.cuda().requires_grad_(True)
        fn = lambda f: superpixel_pool(f, segments.cuda(), 10)[0]
        assert torch.autograd.gradcheck(fn, (features,), nondet_tol=1e-10)
