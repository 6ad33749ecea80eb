"""One process or many (``torchrun``): the process group, collectives, synchronised BatchNorm.

The rule that makes N processes compute what one process with the total batch computes: every
per-batch decision (a quantile, λ_u, a CutMix partner, the memory bank's pushes, which anchors are
drawn) is taken on the *global* batch, identically on every rank, and every loss is a global sum
over a global count. :class:`Dist` holds the collectives for that; with one process each of them
is the identity, so the single-process path pays nothing.

BatchNorm statistics are global too (:class:`GatheredBatchNorm2d`): torch's ``SyncBatchNorm``
refuses CPU tensors, and is not a ``BatchNorm2d`` (models that freeze their backbone's BatchNorm
look for that class).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class Dist:
    """This process's place among ``world`` processes (``rank`` 0 writes files and shows progress)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        return self.world > 1

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """Rank-ordered concatenation along dim 0 of a tensor with one shape on every rank (not
        differentiable); ``t`` itself with one process."""
        if not self.active:
            return t
        import torch.distributed as dist

        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Rank-ordered concatenation of ``(M_r, ...)`` tensors whose ``M_r`` differ between ranks."""
        if not self.active:
            return rows
        counts = self.gather(torch.tensor([rows.shape[0]], device=rows.device)).tolist()
        width = max(counts)
        padded = rows.new_zeros((width, *rows.shape[1:]))
        padded[: rows.shape[0]] = rows
        gathered = self.gather(padded)
        return torch.cat([gathered[r * width:r * width + n] for r, n in enumerate(counts)])

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (a new tensor, not differentiable)."""
        t = t.detach().clone()
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t

    def mean(self, total: torch.Tensor, count: torch.Tensor | float) -> torch.Tensor:
        """This rank's share of a global mean, scaled for DDP's gradient averaging:
        ``total * world / Σ_ranks count``. Summed over ranks and divided by ``world`` (what DDP does
        to gradients) it is ``Σ total / Σ count``; ``count`` 0 everywhere gives 0."""
        count = torch.as_tensor(count, dtype=torch.float32, device=total.device)
        return total * self.world / self.sum(count).clamp_min(1)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def local(self, t: torch.Tensor, size: int) -> torch.Tensor:
        """This rank's rows of a gathered tensor whose ranks contributed ``size`` rows each."""
        return t[self.rank * size:(self.rank + 1) * size]


def setup(device: torch.device) -> Dist:
    """The process group ``torchrun`` describes (WORLD_SIZE, RANK, LOCAL_RANK), started once:
    NCCL on CUDA (each rank on GPU LOCAL_RANK), gloo on the CPU. One process without them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, device)
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(dist.get_rank(), dist.get_world_size(), device)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients: each rank's
    loss depends on the global sum, so each rank's input receives every rank's gradient."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(t)


class GatheredBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the global batch.

    In training mode with an initialised process group, the per-channel mean and variance are
    computed over every rank's pixels (two differentiable all-reduces: the sums, then the squared
    deviations from the global mean, which is as exact as a local two-pass variance), and the
    running statistics are updated with them (unbiased variance, as ``BatchNorm2d``). Otherwise,
    and in eval mode, it is ``BatchNorm2d``. Its state dict is ``BatchNorm2d``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        n_local = x.numel() // x.shape[1]
        sums = _all_reduce_sum(torch.cat([x.sum((0, 2, 3)), x.new_tensor([float(n_local)])]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x - mean.view(1, -1, 1, 1)
        var = _all_reduce_sum((centred * centred).sum((0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp_min(1), alpha=m)
                self.num_batches_tracked.add_(1)
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def gathered_batchnorm(module: nn.Module) -> nn.Module:
    """Turns every ``BatchNorm2d`` of ``module`` into a :class:`GatheredBatchNorm2d` in place
    (parameters and buffers kept, train/eval state kept); returns ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GatheredBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(next(iter(child.state_dict().values())).device)
            new.train(child.training)
            setattr(module, name, new)
        else:
            gathered_batchnorm(child)
    return module
