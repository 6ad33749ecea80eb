"""One image as a superpixel graph (Yi et al., sec. III.C.1), and many graphs as one batch.

``build_superpixel_graph`` chains SLIC -> 4-connected adjacency -> pooled deep features ->
eq. 3 weights -> eq. 4 pruning -> clean-label embedding. ``batch_graphs`` joins graphs block-
diagonally (node ids offset per graph) so one message-passing call serves a whole batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from noisyseg.graph.adjacency import add_self_loops, csr_rows, segment_adjacency
from noisyseg.graph.embed import embed_clean_labels
from noisyseg.graph.similarity import prune_edges, prune_threshold, similarity_weights
from noisyseg.graph.slic import slic_segments


@dataclass
class SuperpixelGraph:
    """A superpixel graph of one image.

    Attributes:
        segments: ``(H, W)`` int64 superpixel ids in ``[0, N)``.
        rowptr, col: CSR edges after pruning (row i lists the nodes i aggregates from).
        weights: ``(E,)`` eq. 3 weights of those edges.
        features: ``(N, D)`` float32 pooled node features.
        node_labels: ``(N,)`` int64 embedded clean labels, -1 = unlabelled.
        confidence: ``(N,)`` float32 majority share of the embedded label.
        gamma: the eq. 4 threshold used.
        spatial_edges: edge count before pruning.
    """

    segments: torch.Tensor
    rowptr: torch.Tensor
    col: torch.Tensor
    weights: torch.Tensor
    features: torch.Tensor
    node_labels: torch.Tensor
    confidence: torch.Tensor
    gamma: float
    spatial_edges: int

    @property
    def num_nodes(self) -> int:
        return self.features.shape[0]


def pool_node_features(features: torch.Tensor, segments: torch.Tensor, num_segments: int) -> torch.Tensor:
    """``(D, h, w)`` features at any stride -> ``(N, D)`` float32 means over each superpixel of the
    bilinearly upsampled map (the paper's interpolate-then-average), via ``superpixel_pool``."""
    from noisyseg.ops.superpixel_pool import superpixel_pool

    means, _ = superpixel_pool(features[None].float(), segments[None].to(features.device), num_segments)
    return means[0]


def build_superpixel_graph(image, features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                           n_segments: int = 1000, compactness: float = 10.0, prune: bool = True,
                           symmetric: bool = False, segments: torch.Tensor | None = None,
                           times: dict | None = None) -> SuperpixelGraph:
    """Builds one image's graph.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (ignored when ``segments`` is given).
        features: ``(D, h, w)`` float deep features at any stride (same device as the result).
        labels: ``(H, W)`` int class ids with 255 = hole.
        num_classes: C.
        n_segments, compactness: SLIC parameters.
        prune: apply eq. 4; symmetric: see ``noisyseg.graph.similarity``.
        segments: precomputed ``(H, W)`` ids in ``[0, N)`` (skips SLIC).
        times: a dict to which ``slic`` and ``graph`` seconds are added.
    """
    times = {} if times is None else times
    device = features.device
    t = time.perf_counter()
    if segments is None:
        segments, n = slic_segments(image, n_segments, compactness)
    else:
        n = int(segments.max()) + 1
    segments = segments.to(device)
    t2 = time.perf_counter()
    times["slic"] = times.get("slic", 0.0) + t2 - t
    rowptr, col = segment_adjacency(segments, n)
    node_feat = pool_node_features(features, segments, n)
    weights = similarity_weights(node_feat, rowptr, col)
    spatial = col.numel()
    gamma = prune_threshold(weights)
    if prune:
        rowptr, col, weights = prune_edges(rowptr, col, weights, symmetric=symmetric, gamma=gamma)
    node_labels, confidence, _ = embed_clean_labels(segments, labels.to(device), n, num_classes)
    times["graph"] = times.get("graph", 0.0) + time.perf_counter() - t2
    return SuperpixelGraph(segments, rowptr, col, weights, node_feat, node_labels, confidence, gamma, spatial)


@dataclass
class GraphBatch:
    """Graphs joined block-diagonally in a padded node layout.

    Graph g's node l has batch id ``g * max_nodes + l``; ids past a graph's size are padding nodes
    (zero features, label -1, only a self-loop). This layout lets per-graph parameters act on
    ``x.view(G, max_nodes, D)`` with one batched matmul and no gather/scatter.

    Attributes:
        x: ``(G * max_nodes, D)`` node features. labels: ``(G * max_nodes,)`` int64, -1 = unlabelled.
        rowptr, col: CSR over all ``G * max_nodes`` ids (self-loops added when asked).
        sizes: ``(G,)`` real node counts. max_nodes: the padded size per graph.
        graph_index: ``(G * max_nodes,)`` the graph of each id. real: ``(G * max_nodes,)`` bool.
    """

    x: torch.Tensor
    labels: torch.Tensor
    rowptr: torch.Tensor
    col: torch.Tensor
    sizes: torch.Tensor
    max_nodes: int
    graph_index: torch.Tensor
    real: torch.Tensor

    @property
    def num_graphs(self) -> int:
        return self.sizes.numel()

    def node_ids(self, g: int, local: torch.Tensor) -> torch.Tensor:
        """Batch ids of graph g's local node ids."""
        return local + g * self.max_nodes


def batch_graphs(graphs: list[SuperpixelGraph], self_loops: bool = True, standardize: bool = True) -> GraphBatch:
    """Joins graphs into one block-diagonal batch (padded layout, see ``GraphBatch``).

    Args:
        graphs: the graphs (same feature dimension).
        self_loops: add i -> i to every node, so a node's own features reach its next layer.
        standardize: z-score each graph's features per dimension (the GNN then sees the same
            scale whatever the backbone's feature magnitudes).
    """
    device = graphs[0].features.device
    G = len(graphs)
    sizes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long, device=device)
    M = max(g.num_nodes for g in graphs)
    D = graphs[0].features.shape[1]
    x = torch.zeros(G, M, D, dtype=torch.float32, device=device)
    labels = torch.full((G, M), -1, dtype=torch.long, device=device)
    rows, cols = [], []
    for k, g in enumerate(graphs):
        f = g.features.float()
        if standardize:
            f = (f - f.mean(0)) / f.std(0, unbiased=False).clamp_min(1e-6)
        x[k, :g.num_nodes] = f
        labels[k, :g.num_nodes] = g.node_labels
        rows.append(csr_rows(g.rowptr) + k * M)
        cols.append(g.col + k * M)
    total = G * M
    row, col = torch.cat(rows), torch.cat(cols)
    rowptr = torch.zeros(total + 1, dtype=torch.long, device=device)
    rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=total), 0)  # rows already sorted per graph, graphs in order
    if self_loops:
        rowptr, col = add_self_loops(rowptr, col)
    graph_index = torch.arange(G, device=device).repeat_interleave(M)
    real = (torch.arange(M, device=device)[None] < sizes[:, None]).reshape(-1)
    return GraphBatch(x.view(total, D), labels.view(-1), rowptr, col, sizes, M, graph_index, real)
