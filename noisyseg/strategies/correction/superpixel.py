"""Shared machinery of the superpixel-graph correctors (``gat``, ``gcn``; Yi et al.,
"Learning from Pixel-Level Label Noise").

Per image: SLIC -> spatial graph -> eq. 3 weights -> eq. 4 pruning -> clean labels embedded by
majority; then a GNN with its own parameters per image (batched, see ``noisyseg.graph.gnn``) is
trained on the labelled superpixels and predicts every superpixel; each pixel takes its
superpixel's class (holes only with ``keep_clean=true``; every pixel, as in the paper, with
``keep_clean=false``). With ``share=true`` one network serves all images of a batch, so a class
that an image's clean pixels never show can still come from the other images.
"""

from __future__ import annotations

import torch

from noisyseg.graph.gnn import train_transductive
from noisyseg.graph.superpixel_graph import SuperpixelGraph, batch_graphs, build_superpixel_graph
from noisyseg.params import Param
from noisyseg.strategies.correction.base import CorrectionInputs, Corrector
from noisyseg.timing import Timer

GRAPH_PARAMS = (
    Param("n_segments", int, 1000, "SLIC: approximate superpixels per image", min=2),
    Param("compactness", float, 10.0, "SLIC: colour/space trade-off", min=0.0),
    Param("prune", bool, True, "remove edges by eq. 4 (γ = mean - std, best-neighbour rule)"),
    Param("symmetric", bool, False, "keep a pruned edge both ways when either direction survives"),
    Param("epochs", int, 50, "full-batch Adam steps per image", min=0),
    Param("lr", float, 0.01, "Adam learning rate", min=0.0),
    Param("weight_decay", float, 5e-4, "Adam weight decay", min=0.0),
    Param("dropout", float, 0.0, "dropout on the inputs of both layers", min=0.0, max=0.95),
    Param("seed", int, 0, "seed of the initial parameters and dropout masks"),
    Param("keep_clean", bool, True, "clean pixels keep their label (false: all pixels take the superpixel class)"),
    Param("share", bool, False, "one network for all images of a batch instead of one per image"),
)


class SuperpixelCorrector(Corrector):
    """Base of ``gat`` and ``gcn``: subclasses implement ``make_model``."""

    needs = ("images", "features")

    def __init__(self, n_segments: int = 1000, compactness: float = 10.0, prune: bool = True, symmetric: bool = False,
                 epochs: int = 50, lr: float = 0.01, weight_decay: float = 5e-4, dropout: float = 0.0,
                 seed: int = 0, keep_clean: bool = True, share: bool = False):
        self.n_segments, self.compactness = n_segments, compactness
        self.prune, self.symmetric = prune, symmetric
        self.epochs, self.lr, self.weight_decay, self.dropout = epochs, lr, weight_decay, dropout
        self.seed, self.keep_clean, self.share = seed, keep_clean, share
        self.last_graphs: list[SuperpixelGraph] = []

    def make_model(self, num_graphs: int, in_features: int, num_classes: int,
                   generator: torch.Generator) -> torch.nn.Module:
        raise NotImplementedError

    def build_graphs(self, inputs: CorrectionInputs, times: Timer) -> list[SuperpixelGraph]:
        graphs = []
        for k in range(len(inputs.ids)):
            stage = {}
            graphs.append(build_superpixel_graph(inputs.images[k], inputs.features[k], inputs.labels[k],
                                                 inputs.num_classes, self.n_segments, self.compactness,
                                                 self.prune, self.symmetric, times=stage))
            times.add(stage)
        return graphs

    def node_logits(self, graphs: list[SuperpixelGraph], num_classes: int, times: Timer) -> torch.Tensor:
        """Trains one model per graph (batched) and returns ``(G * max_nodes, C)`` logits (padded layout)."""
        with times("train"):
            batch = batch_graphs(graphs, self_loops=True)
            generator = torch.Generator().manual_seed(self.seed)
            model = self.make_model(1 if self.share else batch.num_graphs, batch.x.shape[1], num_classes,
                                    generator).to(batch.x.device)
            logits = train_transductive(model, batch, self.epochs, self.lr, self.weight_decay)
        return logits

    def correct_batch(self, inputs: CorrectionInputs, times: Timer) -> torch.Tensor:
        graphs = self.build_graphs(inputs, times)
        self.last_graphs = graphs
        logits = self.node_logits(graphs, inputs.num_classes, times)
        with times("predict"):
            pred = logits.argmax(1)
            M = pred.numel() // len(graphs)
            return torch.stack([pred[k * M + g.segments] for k, g in enumerate(graphs)])
