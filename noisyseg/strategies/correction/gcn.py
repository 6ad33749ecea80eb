"""gcn (Yi et al.'s ablation): the ``gat`` pipeline with a 2-layer GCN, Z = Â ReLU(Â X W1) W2,
Â = D^-1/2 (A + I) D^-1/2 over the pruned superpixel graph. GCN assumes an undirected graph, so
the eq. 4 pruning is symmetrised by default here (``symmetric=true``)."""

from __future__ import annotations

import torch

from noisyseg.graph.gnn import BatchedGCN
from noisyseg.params import Param
from noisyseg.strategies.correction.superpixel import GRAPH_PARAMS, SuperpixelCorrector
from noisyseg.strategies.spec import StrategySpec


class GCNCorrector(SuperpixelCorrector):
    def __init__(self, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def make_model(self, num_graphs: int, in_features: int, num_classes: int,
                   generator: torch.Generator) -> torch.nn.Module:
        return BatchedGCN(num_graphs, in_features, num_classes, self.hidden, self.dropout, generator)


_PARAMS = tuple(Param(p.name, p.type, True, p.help, p.min, p.max, p.choices, p.special) if p.name == "symmetric" else p
                for p in GRAPH_PARAMS)

SPEC = StrategySpec(
    kind="correction",
    name="gcn",
    summary="superpixel graph + per-image 2-layer GCN (symmetric normalisation), the GAT's ablation",
    factory=GCNCorrector,
    params=_PARAMS + (Param("hidden", int, 64, "hidden features", min=1),),
)
