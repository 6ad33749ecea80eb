"""gat (Yi et al., "Learning from Pixel-Level Label Noise"): a 2-layer multi-head dot-product GAT per image
on a superpixel graph, trained on the superpixels that carry clean labels, predicts the rest.

Attention e_ij = φ(v_i)·ψ(v_j) (eq. 5), scaled by 1/sqrt(F) (a reparametrisation the learned φ, ψ
absorb; it keeps the softmax out of saturation at initialisation), softmax over i's neighbours
(eq. 6), heads concatenated (eq. 7), then an output layer over C classes. Self-loops are added so a
node hears its own features (the GAT paper's neighbourhood includes the node). Node features are
z-scored per image. See ``superpixel.py`` for the graph and ``noisyseg.graph.gnn`` for batching.

Beyond the paper (off by default): ``-p min_clean=0.5 -p prior=true -p fuse=true`` labels a
superpixel only when half its pixels are clean and, with a model's probabilities given, lets the
GNN learn a correction to them (see ``superpixel.py``). On CamVid's holes that raised gat from
0.447 to 0.490 mIoU under the synthetic noise and from 0.368 to 0.481 under a weak teacher's
labels (bench/RESULTS.md, 2026-12-03); where the features are far better than the probabilities
it costs instead. With ``-p crf=true -p gnn_weight=0.5 -p n_segments=3000`` as well, 0.560 on the
holes of the 2026-12-04 chain, against crf's 0.562 (``gnn_weight`` 0 is the crf corrector).

``-p supervised=true`` (with ``noisyseg correct --fit-split``) trains one GAT on the holes of a split
with exact masks instead of one per image on its clean superpixels (see ``superpixel.py``): the
per-image network only ever sees superpixels the model already agreed with, this one sees holes.
"""

from __future__ import annotations

import torch

from noisyseg.graph.gnn import BatchedGAT
from noisyseg.params import Param
from noisyseg.strategies.correction.superpixel import GRAPH_PARAMS, SuperpixelCorrector
from noisyseg.strategies.spec import StrategySpec


class GATCorrector(SuperpixelCorrector):
    def __init__(self, hidden: int = 8, heads: int = 4, out_heads: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.heads, self.out_heads = hidden, heads, out_heads

    def make_model(self, num_graphs: int, in_features: int, num_classes: int,
                   generator: torch.Generator) -> torch.nn.Module:
        return BatchedGAT(num_graphs, in_features, num_classes, self.hidden, self.heads, self.out_heads,
                          self.dropout, generator)


SPEC = StrategySpec(
    kind="correction",
    name="gat",
    summary="superpixel graph (SLIC, eq. 3-4 edges) + per-image 2-layer GAT trained on clean superpixels",
    factory=GATCorrector,
    params=GRAPH_PARAMS + (
        Param("hidden", int, 8, "features per head in the hidden layer", min=1),
        Param("heads", int, 4, "attention heads in the hidden layer", min=1),
        Param("out_heads", int, 1, "attention heads averaged in the output layer", min=1),
    ),
)
