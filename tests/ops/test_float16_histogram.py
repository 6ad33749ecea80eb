import numpy as np
import pytest
import torch

from noisyseg.ops import float16_histogram_, float16_histogram_reference_, float16_order_keys
from noisyseg.ops.float16_histogram import float16_from_keys, grouped_histograms, split_histograms
from conftest import needs_kernel as kernel_marker

needs_kernel = kernel_marker("float16_histogram_")
IMPLS = ["reference", pytest.param("kernel", marks=needs_kernel)]


def values(n=5000, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = (torch.randn(n, generator=g) * 4).half()
    v[:5] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0]).half()
    if n >= 95:
        v[5:50] = v[50:95]  # repeated values share bins
    return v


def naive(v, groups, valid, G):
    """Sort-free count per (group, exact float16 value) in numpy: independent of the keys."""
    out = np.zeros((G, 1 << 16), np.int64)
    table = float16_from_keys(torch.arange(1 << 16)).numpy()
    bits = v.view(torch.int16).numpy()
    for i, x in enumerate(v.float().numpy()):
        if not np.isfinite(x) or (valid is not None and not valid[i]):
            continue
        match = np.flatnonzero((table == x) & (np.signbit(table) == np.signbit(x)))
        assert match.size == 1, (x, bits[i])
        out[0 if groups is None else int(groups[i]), match[0]] += 1
    return torch.from_numpy(out)


def test_order_keys_sort_like_values():
    v = values()
    finite = v[torch.isfinite(v)]
    keys = float16_order_keys(finite)
    assert torch.equal(float16_from_keys(keys), finite.float())
    order = torch.argsort(keys, stable=True)
    assert (finite.float()[order].diff() >= 0).all()


def test_grouped_and_split_histograms_bin_any_float_dtype_at_float16():
    g = torch.Generator().manual_seed(3)
    v = torch.randn(4, 50, generator=g, dtype=torch.float64) * 3
    v[0, :3] = torch.tensor([1e6, -1e6, float("nan")], dtype=torch.float64)  # beyond float16: extreme bins; NaN: none
    group = torch.randint(0, 3, (4, 50), generator=g)
    valid = torch.rand(4, 50, generator=g) < 0.8
    got = grouped_histograms(v, group, 3, valid)
    half = torch.where(torch.isfinite(v), v.clamp(-65504, 65504), torch.nan).half()
    want = float16_histogram_reference_(torch.zeros(3, 1 << 16, dtype=torch.int64), half, group, valid)
    assert torch.equal(got, want) and int(got.sum()) == int((valid & torch.isfinite(v)).sum())
    assert torch.equal(grouped_histograms(v, group, 3, valid, into=got.clone()), 2 * want)
    off, on = split_histograms(v, group == 1, valid)
    assert torch.equal(on, want[1]) and torch.equal(off, want[0] + want[2])


def test_metrics_import_the_histogram_helpers_from_the_op():
    import noisyseg.metrics.detection as metrics
    import noisyseg.ops.float16_histogram as op

    for name in ("float16_order_keys", "float16_from_keys", "grouped_histograms", "split_histograms"):
        assert getattr(metrics, name) is getattr(op, name)


@pytest.mark.parametrize("impl", IMPLS)
def test_matches_naive(impl):
    fn = float16_histogram_ if impl == "kernel" else float16_histogram_reference_
    v = values(3000, seed=1).reshape(30, 100)
    g = torch.Generator().manual_seed(2)
    groups = torch.randint(0, 3, (30, 100), generator=g)
    valid = torch.rand(30, 100, generator=g) > 0.2
    counts = torch.zeros(3, 1 << 16, dtype=torch.int64)
    counts[1, 7] = 5  # accumulates into what is there
    fn(counts, v, groups, valid)
    want = naive(v.reshape(-1), groups.reshape(-1), valid.reshape(-1).numpy(), 3)
    want[1, 7] += 5
    assert torch.equal(counts, want)
    plain = fn(torch.zeros(1, 1 << 16, dtype=torch.int64), v)
    assert torch.equal(plain, naive(v.reshape(-1), None, None, 1))


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_group_changes_nothing(impl):
    fn = float16_histogram_ if impl == "kernel" else float16_histogram_reference_
    counts = torch.zeros(2, 1 << 16, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="group ids must lie in 0..1, found 2"):
        fn(counts, values(10), torch.tensor([0, 1, 2, 0, 0, 0, 0, 0, 0, 0]))
    assert counts.sum() == 0
    with pytest.raises(ValueError, match="values must be float16"):
        float16_histogram_(counts, values(10).float())


@pytest.mark.cuda
def test_cuda_matches_cpu():
    v = values(100_000, seed=3)
    groups = torch.randint(0, 4, v.shape)
    cpu = float16_histogram_reference_(torch.zeros(4, 1 << 16, dtype=torch.int64), v, groups)
    gpu = float16_histogram_(torch.zeros(4, 1 << 16, dtype=torch.int64, device="cuda"), v.cuda(), groups.cuda())
    assert torch.equal(gpu.cpu(), cpu)
