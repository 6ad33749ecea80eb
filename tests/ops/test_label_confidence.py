import pytest
import torch

from noisyseg.ops import label_confidence, label_confidence_reference
from conftest import needs_kernel as kernel_marker

needs_kernel = kernel_marker("label_confidence")


def naive(probs: torch.Tensor, labels: torch.Tensor):
    """Per-pixel Python loops: independent of both implementations."""
    b, c, h, w = probs.shape
    p_label, best, p_best = (torch.zeros(b, h, w, dtype=probs.dtype), torch.zeros(b, h, w, dtype=torch.int64),
                             torch.zeros(b, h, w, dtype=probs.dtype))
    for i in range(b):
        for y in range(h):
            for x in range(w):
                v = probs[i, :, y, x].double().tolist()
                k = max(range(c), key=lambda j: (v[j], -j))  # the largest, lowest id on ties
                best[i, y, x], p_best[i, y, x] = k, v[k]
                lab = int(labels[i, y, x])
                p_label[i, y, x] = v[lab] if 0 <= lab < c else 0.0
    return p_label, best, p_best


def make(B=2, C=5, H=7, W=33, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(B, C, H, W, generator=g) * 3, 1)
    if C > 2:
        probs[:, 2, :, :5] = probs[:, 1, :, :5] = probs[:, :, :, :5].amax(1)  # exact ties for the max
    probs[:, :, 0, :3] = 0.0  # all-zero pixels (every class ties), incl. float16 zeros
    labels = torch.randint(0, C, (B, H, W), generator=g)
    labels[:, 1, :4] = 255
    labels[:, 2, 0] = -1
    return probs.to(dtype), labels


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("impl", ["reference", pytest.param("kernel", marks=needs_kernel)])
def test_matches_naive(dtype, impl):
    probs, labels = make(dtype=dtype)
    fn = label_confidence if impl == "kernel" else label_confidence_reference
    got = fn(probs, labels)
    want = naive(probs, labels)
    for name, g, w in zip(("p_label", "best", "p_best"), got, want):
        assert g.dtype == w.dtype and torch.equal(g, w), name


@needs_kernel
@pytest.mark.parametrize("C", [1, 2, 11, 255])
def test_kernel_shapes_and_tails(C):
    probs, labels = make(B=3, C=C, H=5, W=301, dtype=torch.float16, seed=C)  # 1505 px: tiles of 256 and a tail
    for g, w in zip(label_confidence(probs, labels), label_confidence_reference(probs, labels)):
        assert torch.equal(g, w)
    empty = label_confidence(probs[:0], labels[:0])
    assert all(t.shape == (0, 5, 301) for t in empty)


def test_negative_zero_and_negatives_order_like_floats():
    probs = torch.tensor([[-0.0, 0.0, -1.0], [0.5, -0.0, 0.5], [-2.0, -1.0, -3.0]], dtype=torch.float16).T
    probs = probs.reshape(1, 3, 1, 3)  # pixel 0: -0 vs 0 tie -> class 0; pixel 1: 0.5 tie; pixel 2: -1
    labels = torch.tensor([[[1, 2, 0]]])
    for fn in (label_confidence, label_confidence_reference):
        p_label, best, p_best = fn(probs, labels)
        assert best.tolist() == [[[0, 0, 1]]]
        assert p_best.tolist() == [[[0.0, 0.5, -1.0]]]
        assert p_label.tolist() == [[[0.0, 0.5, -2.0]]]


def test_bad_arguments():
    probs, labels = make()
    with pytest.raises(ValueError, match="labels must be int64"):
        label_confidence(probs, labels.int())
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        label_confidence(probs[0], labels)
    with pytest.raises(ValueError, match="1 to 255 classes"):
        label_confidence(torch.zeros(1, 256, 2, 2), torch.zeros(1, 2, 2, dtype=torch.int64))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_cuda_matches_cpu(dtype):
    probs, labels = make(B=4, C=19, H=64, W=97, dtype=dtype)
    cpu = label_confidence_reference(probs, labels)
    gpu = label_confidence(probs.cuda(), labels.cuda())
    for g, w in zip(gpu, cpu):
        assert torch.equal(g.cpu(), w)
