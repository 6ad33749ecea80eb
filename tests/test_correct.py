"""Correction strategies: gat/gcn on toy graphs, pass-through, nearest, crf, determinism."""

import dataclasses

import numpy as np
import pytest
import torch

from noisyseg.graph import build_superpixel_graph
from noisyseg.plugins import get_strategy
from noisyseg.strategies.correction.base import CorrectionInputs
from noisyseg.timing import Timer

C = 3


def two_cluster_graph(seed=0):
    """A 6 x 6 grid of 2 x 2-pixel superpixels; left half (x < 3) is class 0, right half class 2.
    Features separate the halves (+/-1 in channel 0) with noise; one labelled superpixel per half."""
    g = torch.Generator().manual_seed(seed)
    seg = torch.arange(36).view(6, 6).repeat_interleave(2, 0).repeat_interleave(2, 1)
    side = (torch.arange(12) >= 6).float()  # per pixel column
    feats = torch.randn(8, 12, 12, generator=g) * 0.3
    feats[0] += (side * 2 - 1)[None, :]
    labels = torch.full((12, 12), 255)
    labels[0, 0] = 0    # superpixel 0 (left)
    labels[11, 11] = 2  # superpixel 35 (right)
    truth = torch.where(torch.arange(36) % 6 >= 3, 2, 0)
    return build_superpixel_graph(None, feats, labels, C, segments=seg), truth


@pytest.mark.parametrize("name", ["gat", "gcn"])
def test_two_clusters_recovered(name):
    graph, truth = two_cluster_graph()
    assert (graph.node_labels >= 0).sum() == 2
    corrector = get_strategy("correction", name).build({"epochs": 100})
    logits = corrector.node_logits([graph], C, Timer())
    assert logits[:36].argmax(1).tolist() == truth.tolist()


@pytest.mark.parametrize("name", ["gat", "gcn"])
def test_share_learns_a_class_from_another_image(name):
    """Graph a labels both halves; graph b has the same two clusters but only class 0 labelled.
    Per-image networks cannot predict class 2 in b; one network shared by the batch can."""
    a, truth = two_cluster_graph(seed=0)
    b, _ = two_cluster_graph(seed=1)
    b = dataclasses.replace(b, node_labels=torch.where(b.node_labels == 2, -1, b.node_labels))
    for share, expect_b in ((False, False), (True, True)):
        corrector = get_strategy("correction", name).build({"epochs": 100, "share": share})
        logits = corrector.node_logits([a, b], C, Timer())
        assert logits[:36].argmax(1).tolist() == truth.tolist()
        assert (logits[36:72].argmax(1).tolist() == truth.tolist()) == expect_b


def halves_inputs(holes_everywhere_in=(), seed=0):
    """Two 32x32 images, left half class 1 (red), right half class 2 (blue); features separate
    the halves; 3% of pixels clean, the rest holes. Images listed in ``holes_everywhere_in``
    have no clean pixel."""
    rng = np.random.default_rng(seed)
    B, H, W = 2, 32, 32
    gt = torch.full((B, H, W), 1)
    gt[:, :, W // 2:] = 2
    images = torch.zeros(B, H, W, 3, dtype=torch.uint8)
    images[..., 0] = torch.where(gt == 1, 200, 20).to(torch.uint8)
    images[..., 2] = torch.where(gt == 2, 200, 20).to(torch.uint8)
    feats = torch.from_numpy(rng.normal(0, 0.2, (B, 4, H // 4, W // 4)).astype(np.float32))
    feats[:, 0, :, : W // 8] += 1.0
    labels = torch.where(torch.from_numpy(rng.random((B, H, W)) < 0.03), gt, torch.full_like(gt, 255))
    for k in holes_everywhere_in:
        labels[k] = 255
    probs = torch.full((B, C, H, W), 0.1)
    probs.scatter_(1, gt[:, None], 0.8)
    return CorrectionInputs(["a", "b"], labels, C, images, feats, probs), gt


SMALL_GRAPH = {"n_segments": 16, "compactness": 20.0, "epochs": 60}


@pytest.mark.parametrize("name,params,floor", [("gat", SMALL_GRAPH, 0.97), ("gcn", SMALL_GRAPH, 0.97),
                                               ("nearest", {}, 0.9), ("crf", {}, 0.97),
                                               ("prototype", {}, 0.97), ("mllc", {"pool": 1}, 0.97)])
def test_fills_every_hole_correctly_on_halves(name, params, floor):
    inputs, gt = halves_inputs()
    result = get_strategy("correction", name).build(params).correct(inputs)
    assert not result.passed_through.any()
    assert (result.labels != 255).all()
    accuracy = (result.labels == gt).float().mean().item()
    assert accuracy > floor, accuracy
    clean = inputs.labels != 255
    assert torch.equal(result.labels[clean], inputs.labels[clean])  # keep_clean


@pytest.mark.parametrize("name", ["gat", "gcn", "nearest", "crf", "prototype", "mllc"])
def test_image_without_clean_pixel_passes_through(name):
    inputs, gt = halves_inputs(holes_everywhere_in=(0,))
    params = SMALL_GRAPH if name in ("gat", "gcn") else {"pool": 1} if name == "mllc" else {}
    result = get_strategy("correction", name).build(params).correct(inputs)
    assert result.passed_through.tolist() == [True, False]
    assert (result.labels[0] == 255).all()
    assert (result.labels[1] == gt[1]).float().mean() > 0.9


def test_gat_deterministic_and_independent_of_batching():
    inputs, _ = halves_inputs()
    spec = get_strategy("correction", "gat")
    both = spec.build(SMALL_GRAPH).correct(inputs).labels
    again = spec.build(SMALL_GRAPH).correct(inputs).labels
    alone = spec.build(SMALL_GRAPH).correct(inputs.select(torch.tensor([False, True]))).labels
    assert torch.equal(both, again)
    assert torch.equal(both[1], alone[0])


def test_keep_clean_false_relabels_clean_pixels_by_superpixel():
    inputs, gt = halves_inputs()
    labels = inputs.labels.clone()
    wrong = (labels == 1).nonzero()[0]
    labels[tuple(wrong)] = 2  # one wrong clean pixel inside the red half
    inputs = inputs._replace(labels=labels)
    kept = get_strategy("correction", "gat").build(SMALL_GRAPH).correct(inputs).labels
    relabelled = get_strategy("correction", "gat").build({**SMALL_GRAPH, "keep_clean": False}).correct(inputs).labels
    assert kept[tuple(wrong)] == 2
    assert relabelled[tuple(wrong)] == 1


def test_nearest_values():
    from noisyseg.strategies.correction.nearest import nearest_fill

    lab = np.full((3, 5), 255, np.uint8)
    lab[1, 0], lab[1, 4] = 3, 7
    out = nearest_fill(lab)
    assert out[:, :2].tolist() == [[3, 3]] * 3 and out[:, 3:].tolist() == [[7, 7]] * 3


def test_crf_refine_keeps_clean_and_smooths_holes():
    from noisyseg.strategies.correction.refine import crf_refine

    inputs, gt = halves_inputs()
    noisy_fill = gt.clone()
    noisy_fill[:, 5:8, 3:6] = 2  # a blob of wrong labels inside the red half
    out = crf_refine(noisy_fill, inputs.labels, inputs.images, C)
    clean = inputs.labels != 255
    assert torch.equal(out[clean], inputs.labels[clean])
    assert (out[:, 5:8, 3:6] == 1).float().mean() > 0.9


def test_knn_graph_matches_dense_topk():
    from noisyseg.strategies.correction.mllc import knn_graph

    x = torch.nn.functional.normalize(torch.randn(50, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    row, col, w = knn_graph(x, 4, block=7)  # several row blocks
    sim = x @ x.T
    sim.fill_diagonal_(float("-inf"))
    dense = set()
    for i, nbrs in enumerate(sim.topk(4, 1).indices.tolist()):
        dense |= {(i, j) for j in nbrs} | {(j, i) for j in nbrs}
    assert set(zip(row.tolist(), col.tolist())) == dense
    assert (row != col).all()


def test_mllc_fixes_uncertain_node_from_confident_neighbours():
    from noisyseg.strategies.correction.mllc import mllc_scores

    # 20 nodes of one feature cluster; the model is sure of class 0 on 19, wrong-ish on one.
    feats = torch.ones(20, 3) + 0.01 * torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    scores = torch.tensor([[0.9, 0.1]]).repeat(20, 1)
    scores[7] = torch.tensor([0.45, 0.55])
    y = mllc_scores(feats, scores, torch.full((20,), -1), k=5, rounds=2)
    assert (y.argmax(1) == 0).all()


def test_prototype_uses_dataset_prototype_for_missing_class():
    inputs, gt = halves_inputs()
    corrector = get_strategy("correction", "prototype").build({})
    corrector.correct(inputs)  # both classes seen: dataset prototypes exist
    only_red = inputs.labels.clone()
    only_red[only_red == 2] = 255
    flat = inputs._replace(probs=torch.full_like(inputs.probs, 1 / 3))  # the model says nothing
    out = corrector.correct(flat._replace(labels=only_red)).labels
    assert (out[gt == 2] == 2).float().mean() > 0.9
    image_only = get_strategy("correction", "prototype").build({"source": "image"}).correct(
        flat._replace(labels=only_red)).labels
    assert (image_only[gt == 2] == 2).float().mean() < 0.1


class _ZeroGNN(torch.nn.Module):
    """A GNN whose logits are 0 whatever it is trained on: what remains is the prior and the fusion."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes, self.unused = num_classes, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, batch):
        return x.new_zeros(x.shape[0], self.num_classes) + 0 * self.unused


def _random_probs(inputs, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(inputs.probs.shape, generator=g), 1)


def test_min_clean_labels_only_superpixels_clean_enough():
    inputs, gt = halves_inputs()
    rng = torch.Generator().manual_seed(0)
    labels = torch.where(torch.rand(gt.shape, generator=rng) < 0.6, gt, torch.full_like(gt, 255))
    inputs = inputs._replace(labels=labels)  # about 60% of each superpixel clean, varying
    counts = []
    for min_clean in (0.0, 0.5, 0.6, 0.7):
        corrector = get_strategy("correction", "gat").build({**SMALL_GRAPH, "min_clean": min_clean})
        for k, g in enumerate(corrector.build_graphs(inputs, Timer())):
            n = g.node_labels.numel()
            seg = g.segments.reshape(-1)
            share = torch.bincount(seg, (labels[k].reshape(-1) != 255).float(), n) / torch.bincount(seg, minlength=n)
            expect = share >= min_clean if min_clean > 0 else share > 0
            assert torch.equal(g.node_labels >= 0, expect)
            if k == 0:
                counts.append(int(expect.sum()))
    assert counts[0] > counts[2] > counts[3] and counts[0] >= counts[1] >= counts[2], counts


def test_prior_adds_the_superpixel_mean_log_probs():
    inputs, _ = halves_inputs()
    inputs = inputs._replace(probs=_random_probs(inputs))
    corrector = get_strategy("correction", "gat").build({**SMALL_GRAPH, "prior": True})
    corrector.make_model = lambda G, D, C_, gen: _ZeroGNN(C_)
    out = corrector.correct_batch(inputs, Timer())
    for k, g in enumerate(corrector.last_graphs):
        n = g.node_labels.numel()
        mean = torch.zeros(n, C).index_add_(0, g.segments.reshape(-1), inputs.probs[k].reshape(C, -1).T)
        mean /= torch.bincount(g.segments.reshape(-1), minlength=n)[:, None]
        assert torch.equal(out[k], mean.argmax(1)[g.segments])


def test_fuse_with_a_constant_gnn_is_the_pixel_argmax():
    inputs, _ = halves_inputs()
    inputs = inputs._replace(probs=_random_probs(inputs))
    corrector = get_strategy("correction", "gat").build({**SMALL_GRAPH, "fuse": True})
    corrector.make_model = lambda G, D, C_, gen: _ZeroGNN(C_)
    assert torch.equal(corrector.correct_batch(inputs, Timer()), inputs.probs.argmax(1))
    without = get_strategy("correction", "gat").build({**SMALL_GRAPH, "fuse": True}).correct_batch(
        inputs._replace(probs=None), Timer())  # no probs given: the plain superpixel labels
    assert without.shape == inputs.labels.shape


def test_crf_refines_the_posteriors_as_the_crf_corrector_does_the_probs():
    """With a GNN that says nothing, ``crf`` is the ``crf`` corrector: on the model's probabilities
    when fused, on uniform scores when not."""
    inputs, _ = halves_inputs()
    g = torch.Generator().manual_seed(1)
    inputs = inputs._replace(probs=torch.softmax(2.5 * torch.randn(inputs.probs.shape, generator=g), 1))
    crf = get_strategy("correction", "crf").build({})
    outs = []
    for fuse, probs in ((True, inputs.probs), (False, torch.full_like(inputs.probs, 1 / C))):
        corrector = get_strategy("correction", "gat").build({**SMALL_GRAPH, "fuse": fuse, "crf": True})
        corrector.make_model = lambda G, D, C_, gen: _ZeroGNN(C_)
        out = corrector.correct_batch(inputs, Timer())
        expect = crf.correct_batch(inputs._replace(probs=probs), Timer())
        assert (out == expect).float().mean() > 0.999
        plain = get_strategy("correction", "gat").build({**SMALL_GRAPH, "fuse": fuse})
        plain.make_model = corrector.make_model
        assert (plain.correct_batch(inputs, Timer()) != out).any()  # the CRF changed something
        outs.append(out)
    assert (outs[0] != outs[1]).float().mean() > 0.01  # fused, the model's probabilities steer the holes


def test_gnn_weight_scales_the_gnn_term_and_zero_leaves_the_crf_corrector():
    """``gnn_weight`` multiplies the GNN's log-softmax in the fused scores (closed form on the
    static method); at 0 a trained GAT with ``fuse`` and ``crf`` gives the crf corrector's labels,
    at 1 it does not."""
    inputs, _ = halves_inputs()
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(2.5 * torch.randn(inputs.probs.shape, generator=g), 1)
    inputs = inputs._replace(probs=probs)
    corrector = get_strategy("correction", "gat").build(SMALL_GRAPH)
    graphs = corrector.build_graphs(inputs, Timer())
    logits = corrector.node_logits(graphs, C, Timer())
    score = {w: corrector.pixel_log_posteriors(logits, graphs, probs, w) for w in (0.0, 1.0, 2.5)}
    torch.testing.assert_close(score[0.0], probs.clamp_min(1e-6).log())
    torch.testing.assert_close(score[2.5] - score[0.0], 2.5 * (score[1.0] - score[0.0]))

    crf = get_strategy("correction", "crf").build({}).correct_batch(inputs, Timer())
    fused = {w: get_strategy("correction", "gat").build({**SMALL_GRAPH, "fuse": True, "crf": True, "gnn_weight": w})
             .correct_batch(inputs, Timer()) for w in (0.0, 1.0)}
    assert torch.equal(fused[0.0], crf)
    assert (fused[1.0] != crf).float().mean() > 0.01


def _right_half_unlabelled(seed):
    """halves_inputs with every clean pixel of the right half (class 2) removed: an image's own
    clean labels show class 1 only."""
    inputs, gt = halves_inputs(seed=seed)
    labels = inputs.labels.clone()
    labels[..., 16:] = 255
    return inputs._replace(labels=labels), gt


@pytest.mark.parametrize("name,prior", [("gat", False), ("gat", True), ("gcn", False)])
def test_supervised_learns_from_the_fit_splits_holes_what_no_image_shows(name, prior):
    """No image's clean pixels show class 2, so one network per image can only guess the right
    half; one network trained on a fit split's holes against its exact masks learns
    that the right half's features are class 2 there and carries it to the images corrected."""
    from noisyseg.strategies.correction.base import FitContext

    target, gt = _right_half_unlabelled(seed=0)
    fit_inputs, fit_gt = _right_half_unlabelled(seed=1)
    params = {**SMALL_GRAPH, "n_segments": 32, "prior": prior}
    if prior:  # an uninformative model: the class must come from the fit split
        target = target._replace(probs=torch.full_like(target.probs, 1 / C))
        fit_inputs = fit_inputs._replace(probs=torch.full_like(fit_inputs.probs, 1 / C))
    per_image = get_strategy("correction", name).build(params)
    assert not per_image.learns
    assert (per_image.correct(target).labels == gt).float().mean() < 0.9  # the right half is a guess

    corrector = get_strategy("correction", name).build({**params, "supervised": True, "fit_epochs": 300})
    assert corrector.learns
    with pytest.raises(ValueError, match="fit"):
        corrector.correct(target)
    tracked = []
    figures = corrector.fit(FitContext(C, lambda: iter([(fit_inputs, fit_gt)]),
                                       lambda items, total, what: tracked.append(total) or items))
    assert figures["fit_images"] == 2 and figures["fit_hole_nodes"] > 0
    assert tracked == [300]  # the epochs ran under the progress callback
    out = corrector.correct(target).labels
    assert (out == gt).float().mean() > 0.97
    again = get_strategy("correction", name).build({**params, "supervised": True, "fit_epochs": 300})
    again.fit(FitContext(C, lambda: iter([(fit_inputs, fit_gt)])))
    assert torch.equal(again.correct(target).labels, out)  # seeded: the same network twice
