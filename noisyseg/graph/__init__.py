"""Superpixel graphs of images (Yi et al., "Learning from Pixel-Level Label Noise"): SLIC, adjacency, eq. 3-4
edges, label embedding, block-diagonal batching, and the per-graph GNNs trained on them; and the
dense CRF on the fully connected pixel graph (``dense_crf``, pydensecrf), shared by correction and
weighting."""

from noisyseg.graph.adjacency import add_self_loops, csr_from_edges, csr_rows, segment_adjacency
from noisyseg.graph.dense_crf import dense_crf, dense_crf_labels
from noisyseg.graph.embed import embed_clean_labels
from noisyseg.graph.similarity import prune_edges, prune_mask, prune_threshold, similarity_weights
from noisyseg.graph.slic import slic_segments
from noisyseg.graph.superpixel_graph import (GraphBatch, SuperpixelGraph, batch_graphs, build_superpixel_graph,
                                             pool_node_features)

__all__ = ["dense_crf", "dense_crf_labels",
           "add_self_loops", "csr_from_edges", "csr_rows", "segment_adjacency", "embed_clean_labels",
           "prune_edges", "prune_mask", "prune_threshold", "similarity_weights", "slic_segments",
           "GraphBatch", "SuperpixelGraph", "batch_graphs", "build_superpixel_graph", "pool_node_features"]
