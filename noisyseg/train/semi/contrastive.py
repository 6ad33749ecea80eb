"""U2PL's contrastive term (Wang et al., eq. 10 and 21-28) with the category-wise memory bank.

For each class c, on the feature grid of a batch made of labelled rows and unlabelled rows:

- anchors: student features of pixels labelled c (ground truth, or a reliable pseudo-label) whose
  teacher probability p_c > δ_p (0.3); up to M (256) drawn with replacement over the whole global
  batch;
- positive: the class prototype, the mean teacher feature over the pixels labelled c;
- negatives: N (50) keys per anchor drawn from class c's FIFO queue in ``MemoryBank`` (capacity
  30000), which receives, every step and before the draw, the teacher features of
  labelled pixels whose label is not c and whose rank of c is in [0, r_l)   (eq. 26) and of
  unreliable unlabelled pixels whose rank of c is in [r_l, r_h)            (eq. 27), r_l = 3, r_h = 20;
- loss: pixel InfoNCE, cosine similarity, τ = 0.5, averaged over the drawn anchors of every class
  that has anchors and a non-empty queue.

Fixed with respect to the authors' code (Haochen-Wang409/U2PL, ``compute_contra_memobank_loss``):
their labelled negatives require label == c and label != c at once and are always empty (their
issue #171), and their unlabelled negatives require pseudo-label == c; their anchors and
prototypes of the i-th class present are contrasted with the i-th *class's* queue, another class
when some classes are absent (#111); their loss is all-reduced (not differentiable) and divided
by the number of processes, so each rank's gradient is 1/N of what it should be; their queues go
through the CPU every step. Here every per-class quantity is indexed by the class id, the bank
lives on the device and is filled once per step with every rank's keys, anchors are drawn over
the global batch with a generator that is identical on every rank, and each rank's loss is its
share of the global mean, so DDP's averaged gradient equals the one-process gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.losses import pixel_info_nce
from noisyseg.ops.memory_bank import MemoryBank
from noisyseg.train.semi.distributed import Dist


@dataclass(frozen=True)
class ContrastConfig:
    anchors: int = 256
    negatives: int = 50
    r_low: int = 3
    r_high: int = 20
    delta_p: float = 0.3
    temperature: float = 0.5
    capacity: int = 30000


def negative_masks(rank: torch.Tensor, labels: torch.Tensor, labelled: torch.Tensor, unreliable: torch.Tensor,
                   r_low: int = 3, r_high: int = 20) -> torch.Tensor:
    """Which pixels are negative keys of which class (eq. 26-27).

    Args:
        rank: (B, C, h, w) integer, the teacher's rank of each class per pixel (0 = most probable).
        labels: (B, h, w) int64, ground truth on labelled rows (255 = ignore).
        labelled: (B,) bool, which rows are labelled images.
        unreliable: (B, h, w) bool, unreliable pixels (read on unlabelled rows only; padding must
            be False).

    Returns:
        (B, C, h, w) bool: on labelled rows ``labels not in {c, 255} and rank_c < r_low``; on
        unlabelled rows ``unreliable and r_low <= rank_c < r_high``.
    """
    B, C = rank.shape[:2]
    rank = rank.long()
    classes = torch.arange(C, device=rank.device).view(1, C, 1, 1)
    lab = labels[:, None]
    from_labelled = (lab != IGNORE_INDEX) & (lab != classes) & (rank < r_low)
    from_unlabelled = unreliable[:, None] & (rank >= r_low) & (rank < r_high)
    row = labelled.view(B, 1, 1, 1)
    return torch.where(row, from_labelled, from_unlabelled)


def anchor_masks(labels: torch.Tensor, probs: torch.Tensor, delta_p: float = 0.3) -> torch.Tensor:
    """(B, C, h, w) bool: pixels labelled c (ground truth or reliable pseudo-label) with teacher
    p_c > ``delta_p`` (eq. 21-22). ``labels`` (B, h, w) int64, ``probs`` (B, C, h, w)."""
    C = probs.shape[1]
    classes = torch.arange(C, device=labels.device).view(1, C, 1, 1)
    return (labels[:, None] == classes) & (probs > delta_p)


def class_sums(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class sums (C, D) and counts (C,) of ``features`` (B, D, h, w) over pixels labelled c."""
    D = features.shape[1]
    flat = features.permute(0, 2, 3, 1).reshape(-1, D).float()
    lab = labels.reshape(-1)
    keep = lab != IGNORE_INDEX
    sums = torch.zeros(num_classes, D, device=features.device).index_add_(0, lab[keep], flat[keep])
    return sums, torch.bincount(lab[keep], minlength=num_classes).float()


def _keys(features: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """(M, D + 1): the features of every (pixel, class) negative pair, the class id in the last
    column; ordered by row, then class, then pixel."""
    b, c, y, x = negatives.nonzero(as_tuple=True)
    keys = features[b, :, y, x].float()
    return torch.cat([keys, c.to(keys.dtype)[:, None]], 1)


class U2PLContrast:
    """The memory bank and the loss of the module doc, for features of ``dim`` channels.

    ``__call__`` takes the batch of one step (labelled rows first, then unlabelled rows, all on the
    feature grid) and returns the loss (this rank's share; see ``Dist.mean``) and some counts.
    """

    def __init__(self, num_classes: int, dim: int, device: torch.device, config: ContrastConfig = ContrastConfig()):
        self.num_classes, self.dim, self.config = num_classes, dim, config
        self.bank = MemoryBank(num_classes, config.capacity, dim, device=device)
        self._drawn: torch.Tensor | None = None

    def push(self, teacher_features: torch.Tensor, negatives: torch.Tensor, labelled: torch.Tensor, dist: Dist) -> None:
        """Enqueues every rank's negative keys in one push, labelled rows of all ranks first, so
        each class's queue order is the one a single process with the whole batch would produce."""
        parts = [dist.gather_rows(_keys(teacher_features[rows], negatives[rows])) for rows in (labelled, ~labelled)]
        keys = torch.cat(parts)
        self.bank.push(keys[:, :-1], keys[:, -1].long())

    def __call__(self, student_features: torch.Tensor, teacher_features: torch.Tensor, teacher_probs: torch.Tensor,
                 labels: torch.Tensor, labelled: torch.Tensor, unreliable: torch.Tensor, generator: torch.Generator,
                 dist: Dist = Dist()) -> tuple[torch.Tensor, dict[str, float]]:
        """The contrastive loss of one step.

        Args:
            student_features: (B, D, h, w) float with gradient.
            teacher_features: (B, D, h, w) float, detached.
            teacher_probs: (B, C, h, w) float, the teacher's probabilities on the same pixels.
            labels: (B, h, w) int64: ground truth on labelled rows, pseudo-labels on unlabelled rows
                (255 where unreliable, ignored or padding).
            labelled: (B,) bool, True on the first rows (labelled images).
            unreliable: (B, h, w) bool, unreliable unlabelled pixels.
            generator: on the bank's device, in the same state on every rank.

        Returns:
            (loss, {"classes": contributing classes, "anchors": anchors drawn in total}).
        """
        from noisyseg.ops.entropy_rank import entropy_rank

        cfg, C = self.config, self.num_classes
        teacher_features = teacher_features.detach()
        rank = entropy_rank(teacher_probs.detach().float(), is_logits=False).rank
        self.push(teacher_features, negative_masks(rank, labels, labelled, unreliable, cfg.r_low, cfg.r_high),
                  labelled, dist)
        sums, counts = class_sums(teacher_features, labels, C)
        sums, counts = dist.sum(sums), dist.sum(counts)
        prototypes = sums / counts.clamp_min(1)[:, None]

        candidates = anchor_masks(labels, teacher_probs.detach(), cfg.delta_p)        # (B, C, h, w)
        local = torch.stack([candidates[labelled].sum((0, 2, 3)), candidates[~labelled].sum((0, 2, 3))])  # (2, C)
        per_rank = dist.gather(local[None])                                          # (W, 2, C)
        # Global enumeration of class c's candidates: labelled rows of rank 0, 1, ..., then unlabelled.
        flat = per_rank.transpose(0, 1).reshape(-1, C)                                # (2W, C) group-major
        starts = torch.cumsum(flat, 0) - flat
        total = flat.sum(0)                                                           # (C,)
        u = torch.rand((C, cfg.anchors), generator=generator, device=self.bank.device, dtype=torch.float64)
        drawn = torch.minimum((u * total[:, None]).long(), (total[:, None] - 1).clamp_min(0))
        if self._drawn is None or self._drawn.shape[0] != C:
            self._drawn = torch.empty(C, cfg.anchors * cfg.negatives, self.dim, device=self.bank.device)
        negatives = self.bank.sample_all(cfg.anchors * cfg.negatives, generator, out=self._drawn)
        negatives = negatives.view(C, cfg.anchors, cfg.negatives, self.dim)
        usable = (total > 0) & (self.bank.size > 0)
        n_classes = int(usable.sum())
        if n_classes == 0:
            return student_features.sum() * 0.0, {"classes": 0, "anchors": 0}

        me = dist.rank
        lo_l, lo_u = starts[me], starts[dist.world + me]                              # (C,) each
        n_l, n_u = local[0], local[1]
        loss = student_features.sum() * 0.0
        for c in usable.nonzero()[:, 0].tolist():
            b, y, x = candidates[:, c].nonzero(as_tuple=True)                        # labelled rows first
            d = drawn[c]
            in_l = (d >= lo_l[c]) & (d < lo_l[c] + n_l[c])
            in_u = (d >= lo_u[c]) & (d < lo_u[c] + n_u[c])
            mine = in_l | in_u
            if not bool(mine.any()):
                continue
            position = torch.where(in_l, d - lo_l[c], d - lo_u[c] + n_l[c])[mine]
            anchors = student_features[b[position], :, y[position], x[position]]
            m = anchors.shape[0]
            loss = loss + pixel_info_nce(anchors, prototypes[c].to(anchors.dtype), negatives[c][mine].to(anchors.dtype),
                                         cfg.temperature) * m
        loss = loss * dist.world / (cfg.anchors * n_classes)
        return loss, {"classes": n_classes, "anchors": n_classes * cfg.anchors}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.bank.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.bank.load_state_dict(state)
