"""Shared machinery of the superpixel-graph correctors (``gat``, ``gcn``; Yi et al.,
"Learning from Pixel-Level Label Noise").

Per image: SLIC -> spatial graph -> eq. 3 weights -> eq. 4 pruning -> clean labels embedded by
majority; then a GNN with its own parameters per image (batched, see ``noisyseg.graph.gnn``) is
trained on the labelled superpixels and predicts every superpixel; each pixel takes its
superpixel's class (holes only with ``keep_clean=true``; every pixel, as in the paper, with
``keep_clean=false``). With ``share=true`` one network serves all images of a batch, so a class
that an image's clean pixels never show can still come from the other images.

Three options go beyond the paper (all off by default, so the defaults are the paper's method):
``min_clean`` labels a superpixel only when that share of its pixels is clean (the paper labels any
superpixel with a clean pixel, so a hole inside a mostly-hole superpixel takes the label of a few
clean pixels beside it); with a model's probabilities given, ``prior`` adds the log of each
superpixel's mean probabilities to the GNN's logits (the GNN learns a correction to the model's
opinion), and ``fuse`` scores each pixel by its own log-probabilities plus its superpixel's GNN
log-softmax (pixel detail inside a superpixel). On CamVid's holes they raise gat by about 4.5
mIoU points (bench/RESULTS.md, 2026-12-03).

``supervised`` replaces the per-image networks by one network trained once, before any image is
corrected, on the holes of another split with exact masks (``noisyseg correct --fit-split``,
usually the split the clean model learnt from, its probabilities out of fold, its labels corrupted
and cleaned like the corrected split's): it learns the true class distribution of each
superpixel's hole pixels from the superpixel's features, its model prior (with ``prior``) and the
one-hot of its clean label (zeros when it has none). A per-image network can only learn from the
clean superpixels, which detection kept because the model already agreed with them; this one learns
from holes, where the model was doubted.

``crf`` is the paper's last step ("dense CRF refines") on soft scores: the per-pixel posteriors
(softmax of the GNN's, fused with the model's under ``fuse``) are the holes' unaries, clean pixels
one-hots at 0.95 as in the ``crf`` corrector. (``noisyseg correct --crf`` refines any corrector's
hard labels instead.)
"""

from __future__ import annotations

from dataclasses import replace

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.graph.embed import embed_clean_labels
from noisyseg.graph.gnn import train_supervised, train_transductive
from noisyseg.graph.superpixel_graph import (GraphBatch, SuperpixelGraph, batch_graphs, build_superpixel_graph,
                                             pool_node_features)
from noisyseg.losses.class_balance import median_frequency_weights
from noisyseg.params import Param
from noisyseg.strategies.correction.base import CorrectionInputs, Corrector, FitContext
from noisyseg.strategies.correction.crf import DenseCRF
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
    Param("min_clean", float, 0.0, "share of a superpixel's pixels that must be clean for it to be labelled "
          "(0: any clean pixel, as in the paper)", min=0.0, max=1.0),
    Param("fuse", bool, False, "per pixel, add the model's log-probabilities to the GNN's log-softmax (when given)"),
    Param("prior", bool, False, "add the log of the model's mean class probabilities to the GNN's logits (when given)"),
    Param("gnn_weight", float, 1.0, "with fuse: weight of the GNN's log-softmax against the model's log-probabilities "
          "(0: the model's probabilities alone)", min=0.0),
    Param("crf", bool, False, "refine by a dense CRF whose hole unaries are the per-pixel class posteriors "
          "(the paper's last step, on soft scores; clean pixels one-hot at 0.95)"),
    Param("supervised", bool, False, "train one network on the holes of a split with exact masks "
          "(noisyseg correct --fit-split) instead of one per image on its clean superpixels"),
    Param("fit_epochs", int, 200, "with supervised: full-batch Adam steps on the fit split", min=1),
    Param("fit_balance", str, "none", "with supervised: weigh the fit split's hole pixels by median-frequency "
          "class balancing (thin classes count as much as their share of the images they appear in), or none",
          choices=("median", "none")),
)


class _WithPrior(torch.nn.Module):
    """``logits = gnn(x, batch) + prior``: the GNN learns a correction to a fixed per-node prior."""

    def __init__(self, gnn: torch.nn.Module, prior: torch.Tensor):
        super().__init__()
        self.gnn, self.prior = gnn, prior

    def forward(self, x: torch.Tensor, batch) -> torch.Tensor:
        return self.gnn(x, batch) + self.prior


class SuperpixelCorrector(Corrector):
    """Base of ``gat`` and ``gcn``: subclasses implement ``make_model``."""

    needs = ("images", "features")
    accepts = ("probs",)

    def __init__(self, n_segments: int = 1000, compactness: float = 10.0, prune: bool = True, symmetric: bool = False,
                 epochs: int = 50, lr: float = 0.01, weight_decay: float = 5e-4, dropout: float = 0.0,
                 seed: int = 0, keep_clean: bool = True, share: bool = False, min_clean: float = 0.0,
                 prior: bool = False, fuse: bool = False, gnn_weight: float = 1.0, crf: bool = False,
                 supervised: bool = False, fit_epochs: int = 200, fit_balance: str = "none"):
        self.n_segments, self.compactness = n_segments, compactness
        self.prune, self.symmetric = prune, symmetric
        self.epochs, self.lr, self.weight_decay, self.dropout = epochs, lr, weight_decay, dropout
        self.seed, self.keep_clean, self.share = seed, keep_clean, share
        self.min_clean, self.prior, self.fuse, self.crf = min_clean, prior, fuse, crf
        self.gnn_weight = gnn_weight
        self.supervised, self.fit_epochs, self.fit_balance = supervised, fit_epochs, fit_balance
        self.fitted: torch.nn.Module | None = None
        self.last_graphs: list[SuperpixelGraph] = []

    @property
    def learns(self) -> bool:
        return self.supervised

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
            if self.min_clean > 0:
                g = graphs[-1]
                seg = g.segments.reshape(-1)
                n = g.node_labels.numel()
                clean = (inputs.labels[k].reshape(-1).to(seg.device) != IGNORE_INDEX).float()
                share = torch.zeros(n, device=seg.device).index_add_(0, seg, clean) / torch.bincount(seg, minlength=n).clamp_min(1)
                graphs[-1] = replace(g, node_labels=torch.where(share >= self.min_clean, g.node_labels, -1))
            times.add(stage)
        return graphs

    @staticmethod
    def log_priors(graphs: list[SuperpixelGraph], probs: torch.Tensor) -> list[torch.Tensor]:
        """Per graph, ``(N, C)`` log of each superpixel's mean class probabilities (probs ``(B, C, H, W)``)."""
        return [pool_node_features(probs[k].to(g.features.device), g.segments, g.features.shape[0]).clamp_min(1e-6).log()
                for k, g in enumerate(graphs)]

    @staticmethod
    def padded(batch: GraphBatch, per_graph: list[torch.Tensor], num_classes: int) -> torch.Tensor:
        """Per-graph ``(N, C)`` node values (log priors, class counts) -> ``(G * max_nodes, C)``
        float32 in the batch's padded layout (padding nodes: zeros)."""
        out = torch.zeros(batch.num_graphs, batch.max_nodes, num_classes, device=batch.x.device)
        for k, values in enumerate(per_graph):
            out[k, :values.shape[0]] = values.to(out.device).float()
        return out.view(-1, num_classes)

    @staticmethod
    def supervised_inputs(batch: GraphBatch, prior: torch.Tensor | None, num_classes: int) -> torch.Tensor:
        """``(N, D [+ C] + C)`` node inputs of the supervised network: the z-scored features, the
        log prior when there is one, and the one-hot of the node's clean label (zeros for a node
        without one), so the network can weigh the labels around a hole against the model's opinion."""
        known = torch.zeros(batch.labels.shape[0], num_classes, device=batch.x.device)
        labelled = torch.nonzero(batch.labels >= 0).flatten()
        known[labelled, batch.labels[labelled]] = 1.0
        return torch.cat([batch.x, *([] if prior is None else [prior]), known], 1)

    def fit(self, ctx: FitContext) -> dict:
        """``supervised``: one network (shared by all images) learns, for each superpixel of the fit
        split, the distribution of the true classes of its hole pixels (weighted by their number)."""
        if not self.supervised:
            return {}
        graphs, priors, counts = [], [], []
        times = Timer()
        for inputs, gt in ctx.batches():
            batch_graphs_ = self.build_graphs(inputs, times)
            if self.prior and inputs.probs is not None:
                priors += self.log_priors(batch_graphs_, inputs.probs)
            for k, g in enumerate(batch_graphs_):
                truth = gt[k].to(g.segments.device)
                hole_truth = torch.where((inputs.labels[k].to(truth.device) == IGNORE_INDEX) & (truth != IGNORE_INDEX),
                                         truth, torch.full_like(truth, IGNORE_INDEX))
                counts.append(embed_clean_labels(g.segments, hole_truth, g.num_nodes, ctx.num_classes)[2])
            graphs += batch_graphs_
        if not graphs:
            raise ValueError("the fit split has no images")
        batch = batch_graphs(graphs, self_loops=True)
        prior = self.padded(batch, priors, ctx.num_classes) if priors else None
        x = self.supervised_inputs(batch, prior, ctx.num_classes)
        target = self.padded(batch, counts, ctx.num_classes)
        if not bool(target.sum() > 0):
            raise ValueError("the fit split's labels have no holes to learn from")
        if self.fit_balance == "median":
            per_image = torch.stack([n.sum(0).cpu() for n in counts]).numpy()  # (images, C) hole pixels
            image_pixels = (per_image > 0) * per_image.sum(1, keepdims=True)
            target = target * median_frequency_weights(per_image.sum(0), image_pixels.sum(0)).to(x.device)[None]
        model = self.make_model(1, x.shape[1], ctx.num_classes, torch.Generator().manual_seed(self.seed)).to(x.device)
        if prior is not None:
            model = _WithPrior(model, prior)
        loss = train_supervised(model, x, batch, target, self.fit_epochs, self.lr, self.weight_decay,
                                lambda epochs: ctx.track(epochs, self.fit_epochs, f"fit: train on {len(graphs)} graphs"))
        self.fitted = model.gnn if prior is not None else model
        return {"fit_images": len(graphs), "fit_hole_nodes": int((target.sum(1) > 0).sum()), "fit_loss": loss,
                "fit_timings": times.seconds}

    def node_logits(self, graphs: list[SuperpixelGraph], num_classes: int, times: Timer,
                    priors: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Trains one model per graph (batched; or applies the network ``fit`` trained, with
        ``supervised``) and returns ``(G * max_nodes, C)`` logits (padded layout). ``priors``
        (per graph ``(N, C)``) are added to the model's logits while it trains and predicts."""
        with times("train"):
            batch = batch_graphs(graphs, self_loops=True)
            prior = None if priors is None else self.padded(batch, priors, num_classes)
            if self.supervised:
                if self.fitted is None:
                    raise ValueError("supervised=true: call fit first (noisyseg correct --fit-split)")
                with torch.no_grad():
                    logits = self.fitted(self.supervised_inputs(batch, prior, num_classes), batch)
                return logits if prior is None else logits + prior
            generator = torch.Generator().manual_seed(self.seed)
            model = self.make_model(1 if self.share else batch.num_graphs, batch.x.shape[1], num_classes,
                                    generator).to(batch.x.device)
            if prior is not None:
                model = _WithPrior(model, prior)
            logits = train_transductive(model, batch, self.epochs, self.lr, self.weight_decay)
        return logits

    def correct_batch(self, inputs: CorrectionInputs, times: Timer) -> torch.Tensor:
        graphs = self.build_graphs(inputs, times)
        self.last_graphs = graphs
        priors = self.log_priors(graphs, inputs.probs) if self.prior and inputs.probs is not None else None
        logits = self.node_logits(graphs, inputs.num_classes, times, priors)
        with times("predict"):
            M = logits.shape[0] // len(graphs)
            if not (self.fuse or self.crf):
                pred = logits.argmax(1)
                return torch.stack([pred[k * M + g.segments] for k, g in enumerate(graphs)])
            scores = self.pixel_log_posteriors(logits, graphs, inputs.probs if self.fuse else None,
                                               self.gnn_weight if self.fuse else 1.0)
            if not self.crf:
                return scores.argmax(1)
        # The crf corrector's mean field (clean pixels one-hot at its default 0.95), on the posteriors.
        return DenseCRF().correct_batch(inputs._replace(probs=scores.softmax(1)), times)

    @staticmethod
    def pixel_log_posteriors(logits: torch.Tensor, graphs: list[SuperpixelGraph],
                             probs: torch.Tensor | None, gnn_weight: float = 1.0) -> torch.Tensor:
        """``(B, C, H, W)`` per pixel: ``gnn_weight`` x its superpixel's GNN log-softmax (``logits`` in
        the padded layout, ``(G * max_nodes, C)``), plus the model's log-probabilities ``probs``
        ``(B, C, H, W)`` when given (``fuse``); unnormalised."""
        M = logits.shape[0] // len(graphs)
        node = gnn_weight * torch.log_softmax(logits, 1)
        scores = torch.stack([node[k * M + g.segments].permute(2, 0, 1) for k, g in enumerate(graphs)])
        if probs is not None:
            scores = scores + probs.to(scores.device).float().clamp_min(1e-6).log()
        return scores
