"""Superpixel graph: adjacency, eq. 3/4 edges, label embedding, batching, SLIC ids."""

import math

import numpy as np
import pytest
import torch

from noisyseg.graph import (batch_graphs, build_superpixel_graph, csr_rows, embed_clean_labels, prune_edges,
                            prune_mask, prune_threshold, segment_adjacency, similarity_weights, slic_segments)


def edges(rowptr, col):
    return sorted(zip(csr_rows(rowptr).tolist(), col.tolist()))


class TestAdjacency:
    def test_exact_on_hand_made_map(self):
        seg = torch.tensor([[0, 0, 1, 1],
                            [0, 2, 2, 1],
                            [3, 3, 2, 1]])
        rowptr, col = segment_adjacency(seg)
        undirected = {(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)}
        expected = sorted(undirected | {(j, i) for i, j in undirected})
        assert edges(rowptr, col) == expected
        assert rowptr.tolist() == [0, 3, 5, 8, 10]

    def test_diagonal_touch_is_not_adjacent(self):
        seg = torch.tensor([[0, 1], [1, 0]])  # 0 and 0 touch only diagonally; 0-1 across edges
        rowptr, col = segment_adjacency(torch.tensor([[0, 1], [2, 3]]))
        assert (0, 3) not in edges(rowptr, col) and (1, 2) not in edges(rowptr, col)
        assert edges(*segment_adjacency(seg)) == [(0, 1), (1, 0)]

    def test_symmetric_no_duplicates_no_self_loops(self):
        seg = torch.from_numpy(np.random.default_rng(0).integers(0, 20, (30, 40)))
        rowptr, col = segment_adjacency(seg, 20)
        e = edges(rowptr, col)
        assert len(e) == len(set(e))
        assert all(i != j for i, j in e)
        assert set(e) == {(j, i) for i, j in e}
        for i in range(20):  # columns sorted within each row
            row = col[rowptr[i]:rowptr[i + 1]].tolist()
            assert row == sorted(row)

    def test_isolated_segment_id_has_empty_row(self):
        rowptr, col = segment_adjacency(torch.zeros(3, 3, dtype=torch.long), 2)
        assert rowptr.tolist() == [0, 0, 0] and col.numel() == 0


class TestEdgeWeights:
    def toy(self):
        # path 0 - 1 - 2 plus 1 - 3; features in D = 2
        seg = torch.tensor([[0, 1, 2], [1, 1, 1], [1, 3, 1]])
        v = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [4.0, 0.0]])
        rowptr, col = segment_adjacency(seg)
        return v, rowptr, col

    def test_eq3_values(self):
        v, rowptr, col = self.toy()
        w = similarity_weights(v, rowptr, col)
        got = dict(zip(edges(rowptr, col), w.tolist()))
        h = 2
        assert got[(0, 1)] == pytest.approx(math.exp(-1 / (2 * h)))
        assert got[(1, 2)] == pytest.approx(math.exp(-4 / (2 * h)))
        assert got[(1, 3)] == pytest.approx(math.exp(-9 / (2 * h)))
        assert got[(1, 0)] == got[(0, 1)]
        assert len(got) == 6 and (0, 2) not in got  # not spatially adjacent: no edge whatever the features

    def test_eq4_gamma_and_best_neighbour_rule(self):
        v, rowptr, col = self.toy()
        w = similarity_weights(v, rowptr, col)
        e = torch.tensor([math.exp(-0.25), math.exp(-1.0), math.exp(-2.25)]).double()
        assert prune_threshold(w) == pytest.approx(float(e.mean() - e.std(unbiased=False)), rel=1e-6)
        kept = {edge for edge, k in zip(edges(rowptr, col), prune_mask(rowptr, col, w).tolist()) if k}
        # γ ≈ 0.4; w(1,3) = 0.105 < γ: 1 -> 3 removed (3 is not 1's best), but 3 -> 1 kept (1 is 3's only,
        # hence best, neighbour). Everything else is >= γ.
        assert (1, 3) not in kept and (3, 1) in kept
        assert kept == {(0, 1), (1, 0), (1, 2), (2, 1), (3, 1)}
        sym_rowptr, sym_col, sym_w = prune_edges(rowptr, col, w, symmetric=True)
        assert (1, 3) in edges(sym_rowptr, sym_col) and sym_w.numel() == 6

    def test_pruned_weights_follow_their_edges(self):
        v, rowptr, col = self.toy()
        w = similarity_weights(v, rowptr, col)
        r2, c2, w2 = prune_edges(rowptr, col, w)
        assert torch.allclose(w2, similarity_weights(v, r2, c2))

    def test_no_node_loses_all_edges(self):
        g = torch.Generator().manual_seed(1)
        seg = torch.arange(64).view(8, 8)
        rowptr, col = segment_adjacency(seg)
        w = similarity_weights(torch.randn(64, 5, generator=g), rowptr, col)
        r2, _, _ = prune_edges(rowptr, col, w)
        assert (r2.diff() >= 1).all()
        assert r2[-1] < rowptr[-1]  # something was pruned


class TestEmbedding:
    def test_majority_and_confidence(self):
        seg = torch.tensor([[0, 0, 0, 1, 1, 2],
                            [0, 0, 0, 1, 1, 2]])
        lab = torch.tensor([[1, 1, 2, 255, 255, 3],
                            [1, 255, 2, 255, 255, 0]])
        labels, conf, counts = embed_clean_labels(seg, lab, 3, 4)
        assert labels.tolist() == [1, -1, 0]  # node 2: tie 3 vs 0 -> lower id
        assert conf.tolist() == pytest.approx([0.6, 0.0, 0.5])
        assert counts[0].tolist() == [0, 3, 2, 0]


class TestBatchAndBuild:
    def test_build_from_given_segments(self):
        seg = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
        feats = torch.zeros(3, 2, 2)
        feats[0] = torch.tensor([[0.0, 5.0], [0.0, 5.0]])  # left/right halves differ in channel 0
        lab = torch.full((4, 4), 255)
        lab[0, 0] = 2
        g = build_superpixel_graph(None, feats, lab, 4, segments=seg, prune=False)
        assert g.num_nodes == 4 and g.spatial_edges == 8
        assert g.node_labels.tolist() == [2, -1, -1, -1]
        assert g.features[1, 0] > g.features[0, 0]

    def test_batch_is_block_diagonal(self):
        seg_a = torch.tensor([[0, 1], [2, 2]])
        seg_b = torch.tensor([[0, 1, 1]])
        ga = build_superpixel_graph(None, torch.randn(4, 2, 2), torch.zeros(2, 2), 3, segments=seg_a, prune=False)
        gb = build_superpixel_graph(None, torch.randn(4, 1, 3), torch.zeros(1, 3), 3, segments=seg_b, prune=False)
        b = batch_graphs([ga, gb], self_loops=True)
        assert b.max_nodes == 3 and b.x.shape == (6, 4)
        rows = csr_rows(b.rowptr)
        assert (b.graph_index[rows] == b.graph_index[b.col]).all()  # no edge between graphs
        assert b.real.tolist() == [True, True, True, True, True, False]
        assert b.labels[5] == -1
        assert (3, 4) in edges(b.rowptr, b.col) and (5, 5) in edges(b.rowptr, b.col)


def test_slic_ids_contiguous_from_zero():
    yy, xx = np.mgrid[0:40, 0:60]
    image = np.stack([xx * 4, yy * 6, (xx + yy) * 2], -1).astype(np.uint8)  # smooth: SLIC's grid survives
    seg, n = slic_segments(image, n_segments=30)
    assert seg.min() == 0 and int(seg.max()) == n - 1
    assert torch.bincount(seg.flatten()).min() > 0
    assert 20 <= n <= 40


def test_one_dense_crf_for_correction_and_weighting():
    pytest.importorskip("pydensecrf")
    from noisyseg.graph import dense_crf, dense_crf_labels
    from noisyseg.strategies.correction import crf
    from noisyseg.strategies.weighting import urn

    assert crf.dense_crf_labels is dense_crf_labels and urn.dense_crf is dense_crf
    rng = np.random.default_rng(0)
    scores = rng.random((3, 12, 16)).astype(np.float32)
    image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    marginals = dense_crf(scores, image)
    assert marginals.shape == (3, 12, 16) and marginals.dtype == np.float32
    np.testing.assert_allclose(marginals.sum(0), 1.0, rtol=1e-4)
    assert np.array_equal(dense_crf_labels(scores, image), marginals.argmax(0))
