"""One step of the semi-supervised loop: teacher pass, targets, strong views, losses.

Shapes: labelled batch ``x (B_l, 3, S, S)`` normalised, ``y (B_l, S, S)`` int64 (255 = ignore);
unlabelled batch ``u (B_u, 3, S, S)`` in [0, 1] with ``inside (B_u, S, S)`` (not padding) and, when
the stream has labels, ``uy``/``uw``. "Global" tensors hold the ``G = W * B_u`` unlabelled images of
all W processes (rank order); with one process they are the local ones.

1. Targets. The teacher (the student itself, detached, in its training pass over x and u; or the
   EMA teacher) predicts on the weak view u. The pseudo-labeling strategy turns the global batch's
   predictions into hard labels (and soft ones), the optional weighting strategy into per-pixel
   weights; confidence = the top probability of the soft labels (else of the prediction).
2. Views. Each strong view of image g is a photometric distortion of its weak view, CutMix-ed with
   image g + 1 (mod G) of the global batch (the partner's own strong view inside the box, and the
   partner's targets with it), and a cutout whose pixels leave the loss.
3. Losses. See ``noisyseg.train.semi.losses`` for the unsupervised term and its denominator; every
   term is a global sum over a global count (``Dist.mean``). UniMatch's feature-perturbed stream
   (``feature_dropout``) is the student on the weak view with dropped-out decoder inputs: part of
   the teacher pass when the teacher is the student, part of the strong views' pass otherwise.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import NoisySegError
from noisyseg.models.cam import class_activation_maps
from noisyseg.strategies.pseudo_labeling.base import PseudoInputs
from noisyseg.strategies.weighting.base import WeightInputs
from noisyseg.train.augment import mix
from noisyseg.train.data import normalise
from noisyseg.train.semi.config import Plan
from noisyseg.train.semi.contrastive import U2PLContrast
from noisyseg.train.semi.distributed import Dist
from noisyseg.train.semi.losses import confidence_keep, masked_sum, pixel_loss
from noisyseg.train.semi.streams import generator
from noisyseg.train.semi.teacher import teacher_mode


@contextlib.contextmanager
def _one_thread(device: torch.device):
    """Per-image view ops are small: on the CPU, threads cost more than they bring (10x and more
    on a busy machine), so they run on one."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _rows(out: dict, start: int, stop: int | None = None, detach: bool = False) -> dict:
    sl = {k: v[start:stop] for k, v in out.items() if torch.is_tensor(v) and v.dim() > 0}
    return {k: v.detach() for k, v in sl.items()} if detach else sl


def to_grid(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of (B, H, W) integer/bool or (B, C, H, W) float maps to the feature grid."""
    if t.shape[-2:] == tuple(size):
        return t
    if t.dim() == 3:
        return F.interpolate(t[:, None].float(), size=size, mode="nearest")[:, 0].to(t.dtype)
    return F.interpolate(t.float(), size=size, mode="nearest")


@dataclass
class Targets:
    """Per-pixel targets of G images (or of one view's local images): hard (G, S, S) int64, soft
    (G, C, S, S) or None, conf (G, S, S), weights (G, S, S) or None, inside (G, S, S) bool."""

    hard: torch.Tensor
    soft: torch.Tensor | None
    conf: torch.Tensor
    weights: torch.Tensor | None
    inside: torch.Tensor

    def rows(self, index: torch.Tensor) -> "Targets":
        return Targets(*(None if t is None else t[index] for t in (self.hard, self.soft, self.conf, self.weights,
                                                                   self.inside)))

    def mixed(self, partner: "Targets", boxes: torch.Tensor) -> "Targets":
        def m(a, b):
            if a is None:
                return None
            box = boxes.view(boxes.shape[0], *([1] * (a.dim() - 3)), *boxes.shape[1:])
            return mix(a, b, box)
        return Targets(m(self.hard, partner.hard), m(self.soft, partner.soft), m(self.conf, partner.conf),
                       m(self.weights, partner.weights), m(self.inside, partner.inside))


class SemiStep:
    """Computes one micro-batch's loss. Built once by the loop with the run's parts.

    Args:
        plan: the resolved method.
        model: the student as it is called (a DDP wrapper under torchrun); ``student`` the module.
        teacher: the EMA teacher or None. pseudo, weighter: strategy objects or None.
        contrast: U2PL's contrastive term or None. sgc: PseudoSeg's SGC head (as called) or None.
        class_weights: (C,) or None; labelled_weights: the labelled stream has a weights dir.
        tags: the dataset's image tags or None. stream_labels: the unlabelled stream has labels.
    """

    def __init__(self, plan: Plan, model: nn.Module, student: nn.Module, teacher: nn.Module | None, pseudo, weighter,
                 contrast: U2PLContrast | None, sgc: nn.Module | None, num_classes: int, normalisation: str,
                 seed: int, dist: Dist, class_weights: torch.Tensor | None = None, labelled_weights: bool = False,
                 tags: dict | None = None, stream_labels: bool = False):
        self.plan, self.model, self.student, self.teacher = plan, model, student, teacher
        self.pseudo, self.weighter, self.contrast, self.sgc = pseudo, weighter, contrast, sgc
        self.C, self.normalisation, self.seed, self.dist = num_classes, normalisation, seed, dist
        self.class_weights, self.labelled_weights, self.tags = class_weights, labelled_weights, tags
        self.stream_labels = stream_labels

    # -- losses ---------------------------------------------------------------------------------

    def supervised(self, out: dict, y: torch.Tensor, wx: torch.Tensor, tags: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(out["logits"].float(), y, ignore_index=IGNORE_INDEX, reduction="none")
        w = wx if self.labelled_weights else torch.ones_like(ce)
        if self.class_weights is not None:
            w = w * self.class_weights[y.clamp(max=self.C - 1)]
        terms = {"x": self.dist.mean((ce * w).sum(), (y != IGNORE_INDEX).sum())}
        if "class_logits" in out:
            bce = F.binary_cross_entropy_with_logits(out["class_logits"].float(), tags, reduction="sum")
            terms["cls"] = self.dist.mean(bce, tags.numel())
        return terms

    def unsupervised(self, logits: torch.Tensor, t: Targets) -> torch.Tensor:
        loss = pixel_loss(self.plan.unsup_loss, logits, t.hard, t.soft)
        keep = confidence_keep(t.hard, t.conf, self.plan.threshold)
        return self.dist.mean(*masked_sum(loss, keep, t.inside, t.weights))

    def noisy(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the unlabelled stream's own labels over the labelled pixels of the view."""
        labels = torch.where(inside, labels, torch.full_like(labels, IGNORE_INDEX))
        ce = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
        return self.dist.mean((ce * weights).sum(), (labels != IGNORE_INDEX).sum())

    # -- targets --------------------------------------------------------------------------------

    def _present(self, class_logits: torch.Tensor, ids: list[str]) -> torch.Tensor:
        """(B, C) bool classes present: the dataset's tags where it has them, else the classifier's."""
        present = torch.sigmoid(class_logits.float()) > 0.5
        if self.tags:
            for k, image_id in enumerate(ids):
                if image_id in self.tags:
                    present[k] = False
                    present[k, self.tags[image_id]] = True
        return present

    def targets(self, t_u: dict, g_u01: torch.Tensor, g_inside: torch.Tensor, g_uy: torch.Tensor | None,
                ids: list[str], sgc_scores: torch.Tensor | None) -> tuple[Targets, torch.Tensor]:
        """The pseudo-labeling (and weighting) strategies on the global batch; also returns the
        teacher's probabilities (G, C, S, S)."""
        d = self.dist
        size = g_u01.shape[-2:]
        logits = d.gather(t_u["logits"].float())
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        probs = torch.softmax(logits, 1)
        needs = set(getattr(self.pseudo, "needs", ("probs",)))
        features = d.gather(t_u["features"]) if "features" in needs else None
        cams, tags = None, None
        if sgc_scores is not None:
            cams = d.gather(sgc_scores)
        elif "cams" in needs or "tags" in needs:
            if "stage4" not in t_u or not hasattr(self.student, "class_head"):
                raise NoisySegError(f"pseudo-label strategy needs cams/tags: the model must return 'stage4' and "
                                    f"'class_logits' and have a class_head, found outputs {sorted(t_u)}")
            B_u = t_u["logits"].shape[0]
            present = d.gather(self._present(t_u["class_logits"], ids[d.rank * B_u:(d.rank + 1) * B_u]))
            tags = present
            if "cams" in needs:
                cams = class_activation_maps(d.gather(t_u["stage4"].float()), self.student.class_head.weight.detach(),
                                             present)
                cams = F.interpolate(cams, size=size, mode="bilinear", align_corners=False)
        result = self.pseudo.label(PseudoInputs(ids, probs=probs, logits=logits, cams=cams, tags=tags,
                                                features=features, labels=g_uy))
        hard = result.labels
        if tuple(hard.shape) != (probs.shape[0], *size) or hard.dtype != torch.int64:
            raise NoisySegError(f"pseudo-label strategy '{self.plan.pseudo_label}': expected labels int64 "
                                f"{(probs.shape[0], *size)}, found {hard.dtype} {tuple(hard.shape)}")
        hard = hard.to(probs.device)
        hard = torch.where(g_inside, hard, torch.full_like(hard, IGNORE_INDEX))
        soft = result.soft.float().to(probs.device) if result.soft is not None else None
        conf = (soft if soft is not None else probs).amax(1)
        weights = None
        if self.weighter is not None:
            images = g_u01.mul(255).round().byte().permute(0, 2, 3, 1)
            weights = self.weighter.weigh(WeightInputs(ids, probs, labels=hard, images=images)).float().to(probs.device)
        return Targets(hard, soft, conf, weights, g_inside), probs

    # -- the step -------------------------------------------------------------------------------

    def __call__(self, labelled: list, unlabelled: list | None, ids: list[str] | None = None,
                 positions: list[int] | None = None, epoch: int = 0, step: int = 0,
                 alpha: float = 0.2) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One micro-batch.

        Args:
            labelled: items of the labelled stream (``SegmentationSamples``).
            unlabelled: items of the unlabelled stream (``WeakViews``), None for a supervised step.
            ids, positions: the global unlabelled batch's ids and stream positions (seeds of views).
            epoch, step: where in the run (seeds); alpha: U2PL's α_t for the contrastive term.

        Returns:
            (the loss to back-propagate, {term name: its detached value on this rank}).
        """
        device, d, plan = self.dist.device, self.dist, self.plan
        x, y, wx, tags_x = (torch.stack(t).to(device) for t in zip(*labelled))
        B_l = x.shape[0]
        if unlabelled is None:
            terms = self.supervised(self.model(x), y, wx, tags_x)
            return terms["x"] + plan.cls_weight * terms.get("cls", 0.0), terms
        u01, uy, uw, inside = (torch.stack(t).to(device) for t in zip(*unlabelled))
        B_u, S = u01.shape[0], u01.shape[-1]
        u_weak = normalise(u01, self.normalisation)

        # 1. the teacher pass, and PseudoSeg's SGC on it
        first, sgc_scores, terms = None, None, {}
        if plan.teacher == "self":
            kw = {"feature_dropout": plan.feature_dropout} if plan.feature_dropout > 0 else {}
            first = self.model(torch.cat([x, u_weak]), **kw)
            sup_out, t_u, t_l = _rows(first, 0, B_l), _rows(first, B_l, detach=True), None
            terms |= self.supervised(sup_out, y, wx, tags_x)
            if self.sgc is not None:
                sgc_scores, terms["sgc"] = self._sgc(first, y, tags_x, ids, B_l, S)
        else:
            with teacher_mode(self.teacher) as teacher:
                t_all = teacher(torch.cat([x, u_weak]) if self.contrast is not None else u_weak)
            t_l = _rows(t_all, 0, B_l) if self.contrast is not None else None
            t_u = _rows(t_all, B_l) if self.contrast is not None else t_all

        g_u01, g_inside = d.gather(u01), d.gather(inside)
        g_uy, g_uw = (d.gather(uy), d.gather(uw)) if self.stream_labels else (None, None)
        targets, probs = self.targets(t_u, g_u01, g_inside, g_uy, ids, sgc_scores)

        # 2. the strong views of this rank's images
        G = g_u01.shape[0]
        mine = torch.arange(d.rank * B_u, (d.rank + 1) * B_u, device=device)
        partner = (mine + 1) % G
        view_images, view_targets, view_boxes, view_cut = [], [], [], []
        with _one_thread(device):
            for k in range(plan.views):
                imgs, boxes, cuts = self.view(g_u01, mine, partner, positions, k, epoch)
                t = targets.rows(mine).mixed(targets.rows(partner), boxes)
                t.inside = t.inside & ~cuts
                view_images.append(imgs)
                view_targets.append(t)
                view_boxes.append(boxes)
                view_cut.append(cuts)
        views = normalise(torch.cat(view_images), self.normalisation)

        # 3. the student on the strong views, and the losses
        if plan.teacher == "self":
            outs = self.model(views)
            view_outs = [_rows(outs, k * B_u, (k + 1) * B_u) for k in range(plan.views)]
            fp_logits = first["logits_fp"][B_l:] if "logits_fp" in first else None
        else:  # the student's one pass: labelled rows, strong views, and the weak view when it is perturbed
            fp = plan.feature_dropout > 0
            outs = self.model(torch.cat([x, views, u_weak]) if fp else torch.cat([x, views]),
                              **({"feature_dropout": plan.feature_dropout} if fp else {}))
            sup_out = _rows(outs, 0, B_l)
            terms |= self.supervised(sup_out, y, wx, tags_x)
            view_outs = [_rows(outs, B_l + k * B_u, B_l + (k + 1) * B_u) for k in range(plan.views)]
            fp_logits = outs["logits_fp"][B_l + plan.views * B_u:] if fp else None
        for k, (o, t) in enumerate(zip(view_outs, view_targets)):
            terms[f"s{k + 1}" if plan.views > 1 else "s"] = self.unsupervised(o["logits"], t)
        if fp_logits is not None:
            terms["fp"] = self.unsupervised(fp_logits, targets.rows(mine))
        if self.stream_labels:
            noisy = []
            for o, boxes, cuts in zip(view_outs, view_boxes, view_cut):
                labels = mix(g_uy[mine], g_uy[partner], boxes)
                weights = mix(g_uw[mine], g_uw[partner], boxes)
                noisy.append(self.noisy(o["logits"], labels, weights, mix(g_inside[mine], g_inside[partner], boxes) & ~cuts))
            terms["n"] = sum(noisy) / len(noisy)
        if self.contrast is not None:
            terms["c"] = self._contrast(sup_out, t_l, y, view_outs[0], view_targets[0], view_boxes[0], targets,
                                        probs, mine, partner, t_u, epoch, step, alpha)
        total = plan.weight_x * terms["x"] + plan.cls_weight * terms.get("cls", 0.0)
        for k in range(plan.views):
            total = total + plan.weight_views[k] * terms[f"s{k + 1}" if plan.views > 1 else "s"]
        total = total + plan.weight_fp * terms.get("fp", 0.0) + plan.weight_noisy * terms.get("n", 0.0)
        total = total + plan.contrastive_weight * terms.get("c", 0.0) + terms.get("sgc", 0.0)
        return total, terms

    def view(self, g_u01: torch.Tensor, mine: torch.Tensor, partner: torch.Tensor, positions: list[int], k: int,
             epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Strong view ``k`` of this rank's images: (images (B_u, 3, S, S) in [0, 1], CutMix boxes
        (B_u, S, S), cutout boxes (B_u, S, S)). Image g's view depends only on its position's seeds;
        inside its box it shows its partner's own view."""
        strong, S = self.plan.strong, g_u01.shape[-1]

        def photo(g: int) -> torch.Tensor:
            return strong.photometric(g_u01[g], generator(self.seed, "photometric", k, epoch, positions[g]))

        boxes = torch.stack([strong.cutmix(S, generator(self.seed, "cutmix", k, epoch, positions[g]))
                             for g in mine.tolist()]).to(g_u01.device)
        cuts = torch.stack([strong.cutout(S, generator(self.seed, "cutout", k, epoch, positions[g]))
                            for g in mine.tolist()]).to(g_u01.device)
        imgs = []
        for j, (g, q) in enumerate(zip(mine.tolist(), partner.tolist())):
            img = photo(g)
            if bool(boxes[j].any()):
                img = mix(img, photo(q), boxes[j])
            imgs.append(torch.where(cuts[j], torch.full_like(img, 0.5), img))
        return torch.stack(imgs), boxes, cuts

    def _sgc(self, first: dict, y: torch.Tensor, tags_x: torch.Tensor, ids: list[str], B_l: int,
             S: int) -> tuple[torch.Tensor, torch.Tensor]:
        """PseudoSeg: SGC over the (detached) pass, trained by CE on the labelled rows; returns the
        unlabelled rows' scores at crop size (detached) and the SGC loss."""
        d = self.dist
        stage4, feats = first["stage4"].detach(), first["features"].detach()
        B_u = stage4.shape[0] - B_l
        local_ids = ids[d.rank * B_u:(d.rank + 1) * B_u]
        present = torch.cat([tags_x > 0.5, self._present(first["class_logits"][B_l:].detach(), local_ids)])
        cams = class_activation_maps(stage4, self.student.class_head.weight.detach(), present)
        scores = self.sgc([stage4, feats], cams)
        scores = F.interpolate(scores, size=(S, S), mode="bilinear", align_corners=False)
        ce = F.cross_entropy(scores[:B_l].float(), y, ignore_index=IGNORE_INDEX, reduction="none")
        return scores[B_l:].detach(), d.mean(ce.sum(), (y != IGNORE_INDEX).sum())

    def _contrast(self, sup_out: dict, t_l: dict, y: torch.Tensor, view_out: dict, view_t: Targets,
                  boxes: torch.Tensor, targets: Targets, probs: torch.Tensor, mine: torch.Tensor, partner: torch.Tensor,
                  t_u: dict, epoch: int, step: int, alpha: float) -> torch.Tensor:
        """U2PL's contrastive term on labelled rows + the first strong view's rows (feature grid)."""
        from noisyseg.ops.entropy_rank import entropy_rank

        d = self.dist
        grid = sup_out["features"].shape[-2:]
        out = entropy_rank(probs, is_logits=False, valid=targets.inside, quantile=1.0 - alpha)
        unreliable = targets.inside & (out.entropy > out.threshold)
        g_feats = d.gather(t_u["features"])
        box_grid = to_grid(boxes, grid)
        u_feats = mix(g_feats[mine], g_feats[partner], box_grid[:, None])
        u_probs = mix(probs[mine], probs[partner], boxes[:, None])
        u_unrel = mix(unreliable[mine], unreliable[partner], boxes) & view_t.inside
        u_labels = torch.where(view_t.inside, view_t.hard, torch.full_like(view_t.hard, IGNORE_INDEX))
        y_grid = to_grid(y, grid)
        labels = torch.cat([y_grid, to_grid(u_labels, grid)])
        student = torch.cat([sup_out["features"], view_out["features"]])
        teacher = torch.cat([t_l["features"], u_feats])
        t_probs = torch.cat([to_grid(torch.softmax(t_l["logits"].float(), 1), grid), to_grid(u_probs, grid)])
        unrel = torch.cat([torch.zeros_like(y_grid, dtype=torch.bool), to_grid(u_unrel, grid)])
        is_labelled = torch.arange(labels.shape[0], device=labels.device) < y_grid.shape[0]
        g = generator(self.seed, "contrast", epoch, step, device=self.contrast.bank.device)
        loss, _ = self.contrast(student, teacher, t_probs, labels, is_labelled, unrel, g, d)
        return loss
