import math

import pytest
import torch

from noisyseg.ops import (
    gat_attention,
    gat_attention_additive,
    gat_attention_additive_reference,
    gat_attention_reference,
)
from conftest import needs_kernel as kernel_marker

needs_kernel = kernel_marker("gat_attention")


def make_graph(num_nodes=9, p=0.35, isolated=(3,), seed=0):
    """Random graph with duplicate-free edges; `isolated` nodes have no neighbours."""
    g = torch.Generator().manual_seed(seed)
    adj = torch.rand(num_nodes, num_nodes, generator=g) < p
    adj[list(isolated)] = False
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), adj.sum(1).cumsum(0)])
    return adj, rowptr, adj.nonzero()[:, 1].contiguous()


def dense(logits, adj, value):
    """Masked dense softmax over [heads, N, N] logits: independent of the edge-list implementations."""
    p = torch.softmax(logits.double().masked_fill(~adj, float("-inf")), -1).nan_to_num(0.0)
    return torch.einsum("hij,jhf->ihf", p, value.double())


def dense_dot(q, k, v, adj, scale):
    return dense(torch.einsum("ihf,jhf->hij", q.double(), k.double()) * scale, adj, v)


def dense_additive(s, t, v, adj, slope):
    z = s.double().t()[:, :, None] + t.double().t()[:, None, :]
    return dense(torch.nn.functional.leaky_relu(z, slope), adj, v)


def tensors(N, heads, F, Fv, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g).to(dtype) for s in ((N, heads, F), (N, heads, F), (N, heads, Fv))]


def tol(dtype):
    return {torch.float16: 3e-3, torch.bfloat16: 3e-2, torch.float32: 1e-5, torch.float64: 1e-10}[dtype]


class TestReference:
    def test_smoke_against_dense(self):
        adj, rowptr, col = make_graph()
        q, k, v = tensors(9, 2, 3, 4, torch.float64)
        out = gat_attention_reference(q, k, v, rowptr, col)
        torch.testing.assert_close(out, dense_dot(q, k, v, adj, 1 / math.sqrt(3)))
        assert out[3].abs().max() == 0

    def test_additive_against_dense(self):
        adj, rowptr, col = make_graph()
        s, t = torch.randn(9, 2, dtype=torch.float64), torch.randn(9, 2, dtype=torch.float64)
        v = torch.randn(9, 2, 5, dtype=torch.float64)
        out = gat_attention_additive_reference(s, t, v, rowptr, col, 0.1)
        torch.testing.assert_close(out, dense_additive(s, t, v, adj, 0.1))

    def test_exception(self):
        _, rowptr, col = make_graph()
        q, k, v = tensors(9, 2, 3, 4)
        with pytest.raises(ValueError, match=r"rowptr must be \[N \+ 1\]"):
            gat_attention(q, k, v, rowptr[:-1], col)
        with pytest.raises(TypeError, match="int64"):
            gat_attention(q, k, v, rowptr.int(), col)


@needs_kernel
class TestKernel:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
    def test_smoke_against_dense(self, dtype):
        adj, rowptr, col = make_graph(num_nodes=23, p=0.3, isolated=(0, 7, 22))
        q, k, v = tensors(23, 3, 8, 5, dtype)
        out = gat_attention(q, k, v, rowptr, col, 0.5)
        assert out.dtype == dtype and out.shape == (23, 3, 5)
        torch.testing.assert_close(out.double(), dense_dot(q, k, v, adj, 0.5), atol=tol(dtype), rtol=tol(dtype))
        assert out[[0, 7, 22]].abs().max() == 0

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
    def test_additive_against_dense(self, dtype):
        adj, rowptr, col = make_graph(num_nodes=17, p=0.4)
        g = torch.Generator().manual_seed(3)
        s, t, v = (torch.randn(*sh, generator=g).to(dtype) for sh in ((17, 4), (17, 4), (17, 4, 6)))
        out = gat_attention_additive(s, t, v, rowptr, col)
        torch.testing.assert_close(out.double(), dense_additive(s, t, v, adj, 0.2), atol=tol(dtype), rtol=tol(dtype))

    def test_default_scale_duplicates_and_non_contiguous(self):
        adj, rowptr, col = make_graph(num_nodes=11)
        q, k, v = (x.transpose(0, 1).contiguous().transpose(0, 1) for x in tensors(11, 2, 6, 3))
        k = torch.randn(11, 2, 12)[..., ::2]  # strided features
        col = torch.cat([col, col[:1]])  # one duplicate edge, appended to the last row
        rowptr = rowptr.clone()
        rowptr[-1] += 1
        want = gat_attention_reference(q, k, v, rowptr, col)
        torch.testing.assert_close(gat_attention(q, k, v, rowptr, col), want)

    def test_gradcheck(self):
        _, rowptr, col = make_graph()
        q, k, v = (x.requires_grad_(True) for x in tensors(9, 2, 3, 4, torch.float64))
        fn = lambda q, k, v: torch.ops.noisyseg.gat_attention(q, k, v, rowptr, col, 0.7)[0]
        assert torch.autograd.gradcheck(fn, (q, k, v))

    def test_gradcheck_additive(self):
        _, rowptr, col = make_graph()
        g = torch.Generator().manual_seed(5)
        s, t, v = (torch.randn(*sh, generator=g, dtype=torch.float64).requires_grad_(True)
                   for sh in ((9, 3), (9, 3), (9, 3, 2)))
        fn = lambda s, t, v: torch.ops.noisyseg.gat_attention_additive(s, t, v, rowptr, col, 0.2)[0]
        assert torch.autograd.gradcheck(fn, (s, t, v))

    def test_gradient_matches_reference_float32(self):
        _, rowptr, col = make_graph(num_nodes=40, p=0.15, isolated=(1, 2))
        inputs = [x.requires_grad_(True) for x in tensors(40, 4, 16, 8)]
        weight = torch.randn(40, 4, 8)
        (gat_attention(*inputs, rowptr, col) * weight).sum().backward()
        ours = [x.grad.clone() for x in inputs]
        for x in inputs:
            x.grad = None
        (gat_attention_reference(*inputs, rowptr, col) * weight).sum().backward()
        for a, x in zip(ours, inputs):
            torch.testing.assert_close(a, x.grad, atol=1e-5, rtol=1e-4)

    def test_cardinality_empty_graph(self):
        q, k, v = tensors(5, 2, 3, 4)
        out = gat_attention(q, k, v, torch.zeros(6, dtype=torch.long), torch.zeros(0, dtype=torch.long))
        assert out.shape == (5, 2, 4) and out.abs().max() == 0

    def test_exception(self):
        _, rowptr, col = make_graph()
        q, k, v = tensors(9, 2, 3, 4)
        op = torch.ops.noisyseg.gat_attention
        with pytest.raises(RuntimeError, match=r"gat_attention: key must have the query's shape"):
            op(q, k[:, :1], v, rowptr, col, None)
        with pytest.raises(RuntimeError, match=r"gat_attention: col\[0\] = 9 is outside \[0, 9\)"):
            op(q, k, v, rowptr, torch.full_like(col, 9), None)
        with pytest.raises(RuntimeError, match="gat_attention: rowptr must start at 0 and end at E"):
            op(q, k, v, rowptr + 1, col, None)
        with pytest.raises(RuntimeError, match="gat_attention_additive: src_score must be"):
            torch.ops.noisyseg.gat_attention_additive(q, k, v, rowptr, col, 0.2)


@pytest.mark.cuda
class TestCuda:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
    def test_smoke_against_dense(self, dtype):
        adj, rowptr, col = make_graph(num_nodes=23, p=0.3, isolated=(0, 7))
        q, k, v = tensors(23, 3, 40, 70, dtype)
        out = gat_attention(q.cuda(), k.cuda(), v.cuda(), rowptr.cuda(), col.cuda())
        want = dense_dot(q, k, v, adj, 1 / math.sqrt(40))
        torch.testing.assert_close(out.cpu().double(), want, atol=tol(dtype), rtol=tol(dtype))

    def test_gradcheck(self):
        _, rowptr, col = make_graph()
        q, k, v = (x.cuda().requires_grad_(True) for x in tensors(9, 2, 3, 4, torch.float64))
        fn = lambda q, k, v: gat_attention(q, k, v, rowptr.cuda(), col.cuda(), 0.7)
        assert torch.autograd.gradcheck(fn, (q, k, v), nondet_tol=1e-10)

    def test_gradcheck_additive(self):
        _, rowptr, col = make_graph()
        s, t, v = (torch.randn(*sh, dtype=torch.float64, device="cuda").requires_grad_(True)
                   for sh in ((9, 3), (9, 3), (9, 3, 2)))
        fn = lambda s, t, v: gat_attention_additive(s, t, v, rowptr.cuda(), col.cuda())
        assert torch.autograd.gradcheck(fn, (s, t, v), nondet_tol=1e-10)
