"""mllc (MLLC: Xiao et al., "Multi-Level Label Correction by Distilling Proximate Patterns"):
semantic-level and class-level graphs correcting the model's predictions on the holes, after the
public code's graph step (the paper gives only its abstract).

Nodes are cells of the feature map average-pooled by ``pool`` (the ``(h/pool) x (w/pool)`` grid).
Each of K rounds:

1. Semantic-level graph: kNN (k = 21, cosine of L2-normalised features) found with ``torch.topk``
   over row blocks (never a dense N x N sort), symmetrised, normalised D^-1/2 A D^-1/2.
2. The class scores Y (probs pooled to the grid; clean cells clamped to their one-hot label)
   are propagated once, Y' = Â Y. A dynamic per-class threshold η_c = mean confidence of the
   nodes currently predicted c decides which nodes are mixed: nodes with max Y < η_{argmax Y}
   take Y' (renormalised; "<=" so a node alone in its class is mixed too), confident nodes keep Y (the adaptive per-class confidence mask).
3. Class-level graph: on the kNN edges, weight cos(Y_i, Y_j) zeroed where argmax differs,
   row-normalised; features move toward their class-consistent neighbours,
   f <- normalise(f + Â_cls f); the next round's kNN graph is built from these features.

Clean cells (majority of the cell's pixels clean, see ``anchor_share``) are clamped to their label
after every round. The final scores are upsampled bilinearly and the holes take their argmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.params import Param
from noisyseg.strategies.correction.base import CorrectionInputs, Corrector
from noisyseg.strategies.spec import StrategySpec
from noisyseg.timing import Timer


def knn_graph(x: torch.Tensor, k: int, block: int = 1024) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric kNN graph of L2-normalised rows, top-k per row block (self excluded).

    Args:
        x: (N, D) float, rows L2-normalised.
    Returns:
        row, col (E,) int64 and weight (E,) float32 >= 0: A = (K + K^T) / 2 where K holds each
        row's top-k cosines (clamped at 0); each undirected edge once per direction.
    """
    N = x.shape[0]
    k = min(k, N - 1)
    rows, cols, vals = [], [], []
    for start in range(0, N, block):
        sim = x[start:start + block] @ x.T
        idx = torch.arange(start, min(start + block, N), device=x.device)
        sim[idx - start, idx] = float("-inf")
        v, c = sim.topk(k, dim=1)
        rows.append(idx.repeat_interleave(k))
        cols.append(c.reshape(-1))
        vals.append(v.reshape(-1).clamp_min(0))
    row, col, val = torch.cat(rows), torch.cat(cols), torch.cat(vals)
    # A = (K + K^T) / 2 with K the directed kNN weights, in COO with unique (row, col) pairs.
    key = torch.cat([row * N + col, col * N + row])
    uniq, inverse = torch.unique(key, return_inverse=True)
    weight = torch.zeros(uniq.numel(), device=x.device).index_add(0, inverse, torch.cat([val, val]) * 0.5)
    return uniq // N, uniq % N, weight


def sym_normalise(row: torch.Tensor, col: torch.Tensor, weight: torch.Tensor, N: int) -> torch.Tensor:
    deg = torch.zeros(N, device=weight.device).index_add(0, row, weight).clamp_min(1e-12)
    inv = deg.rsqrt()
    return weight * inv[row] * inv[col]


def propagate(row, col, coef, y: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(y).index_add(0, row, coef[:, None] * y[col])


def mllc_scores(features: torch.Tensor, scores: torch.Tensor, anchors: torch.Tensor, k: int = 21,
                rounds: int = 3) -> torch.Tensor:
    """The K rounds on one image's grid.

    Args:
        features: (N, D) float node features. scores: (N, C) class scores summing to 1.
        anchors: (N,) int64 clamped labels, -1 = free.
    Returns:
        (N, C) corrected scores.
    """
    N, C = scores.shape
    f = F.normalize(features.float(), dim=1)
    y = scores.float().clone()
    fixed = anchors >= 0
    onehot = F.one_hot(anchors.clamp_min(0), C).float()
    y = torch.where(fixed[:, None], onehot, y)
    for _ in range(rounds):
        row, col, w = knn_graph(f, k)
        coef = sym_normalise(row, col, w, N)
        y_prop = propagate(row, col, coef, y)
        y_prop = y_prop / y_prop.sum(1, keepdim=True).clamp_min(1e-12)
        conf, cls = y.max(1)
        eta = torch.zeros(C, device=y.device).index_add(0, cls, conf) / \
            torch.bincount(cls, minlength=C).clamp_min(1).float()
        # "<=": a node alone in its class (conf == η) cannot vouch for itself.
        y = torch.where((conf <= eta[cls])[:, None], y_prop, y)
        y = torch.where(fixed[:, None], onehot, y)
        # Class-level graph on the same edges: consistency of the class distributions.
        cls = y.argmax(1)
        yn = F.normalize(y, dim=1)
        w_cls = (yn[row] * yn[col]).sum(1) * (cls[row] == cls[col]).float()
        deg = torch.zeros(N, device=y.device).index_add(0, row, w_cls).clamp_min(1e-12)
        f = F.normalize(f + propagate(row, col, w_cls / deg[row], f), dim=1)
    return y


class MLLC(Corrector):
    needs = ("features", "probs")

    def __init__(self, k: int = 21, rounds: int = 3, pool: int = 2, anchor_share: float = 0.5, keep_clean: bool = True):
        self.k, self.rounds, self.pool, self.anchor_share, self.keep_clean = k, rounds, pool, anchor_share, keep_clean

    def correct_batch(self, inputs: CorrectionInputs, times: Timer) -> torch.Tensor:
        with times("predict"):
            feats = inputs.features.float()
            if self.pool > 1:
                feats = F.avg_pool2d(feats, self.pool, ceil_mode=True)
            B, D, h, w = feats.shape
            C = inputs.num_classes
            probs = inputs.probs.float()
            grid_probs = F.adaptive_avg_pool2d(probs, (h, w))
            labels = inputs.labels.long()
            clean = labels != IGNORE_INDEX
            share = F.adaptive_avg_pool2d(
                F.one_hot(torch.where(clean, labels, 0), C).permute(0, 3, 1, 2).float() * clean[:, None], (h, w))
            top, arg = share.max(1)
            anchors = torch.where(top >= self.anchor_share, arg, torch.full_like(arg, -1))
            out = []
            for b in range(B):
                y = mllc_scores(feats[b].reshape(D, -1).T, grid_probs[b].reshape(C, -1).T, anchors[b].reshape(-1),
                                self.k, self.rounds)
                out.append(y.T.reshape(C, h, w))
            up = F.interpolate(torch.stack(out), size=probs.shape[2:], mode="bilinear", align_corners=False)
            return up.argmax(1)


SPEC = StrategySpec(
    kind="correction",
    name="mllc",
    summary="MLLC-style kNN feature graph + class-consistency graph correcting the model's predictions",
    factory=MLLC,
    params=(
        Param("k", int, 21, "neighbours per node in the semantic-level graph", min=1),
        Param("rounds", int, 3, "K rounds of both graphs", min=1),
        Param("pool", int, 2, "average-pool the feature map by this factor to form the node grid", min=1),
        Param("anchor_share", float, 0.5, "a grid cell is clamped to a clean class covering this share of it",
              min=0.0, max=1.0),
        Param("keep_clean", bool, True, "clean pixels keep their label"),
    ),
)
