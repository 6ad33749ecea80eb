"""Category-wise FIFO memory bank of D-dim keys on the device (U2PL's negative-key queues).

One ``(C, capacity, D)`` tensor holds a ring buffer per class; ``(C,)`` int64 write heads and
sizes live on the same device. Pushing and sampling never sync with the host; ``keys(c)`` does
(it is for inspection). The compiled op ``torch.ops.noisyseg.memory_bank_push`` enqueues a whole
batch of labelled keys in one call (contract in ``csrc/ops/memory_bank.cpp``).
"""

from __future__ import annotations

import torch

from noisyseg.ops._ext import has_op

__all__ = ["MemoryBank", "memory_bank_push", "memory_bank_push_reference"]


def memory_bank_push_reference(bank: torch.Tensor, head: torch.Tensor, size: torch.Tensor, keys: torch.Tensor,
                               labels: torch.Tensor) -> None:
    """Pure-torch ``memory_bank_push``: same in-place semantics, no loop over keys or classes."""
    num_classes, capacity, _ = bank.shape
    ok = (labels >= 0) & (labels < num_classes)
    keys, labels = keys[ok], labels[ok]
    count = torch.bincount(labels, minlength=num_classes)
    if labels.numel() > 0:
        order = torch.argsort(labels, stable=True)
        cls = labels[order]
        start = torch.cumsum(count, 0) - count
        rank = torch.arange(cls.numel(), device=bank.device) - start[cls]
        drop = (count[cls] - capacity).clamp_min(0)
        keep = rank >= drop
        slot = (head[cls] + rank - drop) % capacity
        bank[cls[keep], slot[keep]] = keys[order[keep]].to(bank.dtype)
    head.copy_((head + count.clamp_max(capacity)) % capacity)
    size.copy_((size + count).clamp_max(capacity))


def memory_bank_push(bank: torch.Tensor, head: torch.Tensor, size: torch.Tensor, keys: torch.Tensor,
                     labels: torch.Tensor) -> None:
    """Enqueue ``keys (M, D)`` with ``labels (M,)`` int64 into ``bank (C, capacity, D)`` in place.

    Per class FIFO in the order of ``keys``; labels outside ``[0, C)`` are ignored; if more than
    ``capacity`` keys of one class arrive, the newest ``capacity`` are kept.
    """
    if has_op("memory_bank_push"):
        torch.ops.noisyseg.memory_bank_push(bank, head, size, keys, labels)
    else:
        memory_bank_push_reference(bank, head, size, keys, labels)


def _all_gather_padded(keys: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and labels of every rank, rank 0 first; ranks' M differ, so pad with label -1."""
    import torch.distributed as dist

    world = dist.get_world_size()
    m = torch.tensor([keys.shape[0]], device=keys.device, dtype=torch.int64)
    counts = [torch.zeros_like(m) for _ in range(world)]
    dist.all_gather(counts, m)
    width = int(torch.stack(counts).max())
    padded_keys = keys.new_zeros((width, keys.shape[1]))
    padded_keys[: keys.shape[0]] = keys
    padded_labels = labels.new_full((width,), -1)
    padded_labels[: labels.shape[0]] = labels
    all_keys = [torch.empty_like(padded_keys) for _ in range(world)]
    all_labels = [torch.empty_like(padded_labels) for _ in range(world)]
    dist.all_gather(all_keys, padded_keys)
    dist.all_gather(all_labels, padded_labels)
    return torch.cat(all_keys), torch.cat(all_labels)


class MemoryBank:
    """One on-device FIFO ring buffer of D-dim keys per class.

    Args:
        num_classes: C, the number of queues.
        capacity: keys kept per class (the oldest are dropped first).
        dim: D, the key size.
        device: where the bank, heads and sizes live.
        dtype: the keys' dtype (float16/bfloat16/float32/float64).

    Sampling from an empty class returns zeros (a zero row kept past the end of the bank), never
    stale memory. Not differentiable: keys are stored detached.

    Example:
        >>> bank = MemoryBank(num_classes=3, capacity=4, dim=2)
        >>> bank.push(torch.ones(5, 2), torch.tensor([0, 0, 2, 255, 0]))
        >>> bank.sizes().tolist(), bank.sample_all(6).shape
        ([3, 0, 1], torch.Size([3, 6, 2]))
    """

    def __init__(self, num_classes: int, capacity: int, dim: int, device=None, dtype: torch.dtype = torch.float32):
        if num_classes < 1 or capacity < 1 or dim < 1:
            raise ValueError(f"MemoryBank: num_classes, capacity and dim must be >= 1, got "
                             f"{num_classes}, {capacity}, {dim}")
        self.num_classes, self.capacity, self.dim = num_classes, capacity, dim
        # One extra zero row after the C * capacity slots: empty classes sample from it.
        self._storage = torch.zeros(num_classes * capacity + 1, dim, device=device, dtype=dtype)
        self.bank = self._storage[:-1].view(num_classes, capacity, dim)
        self.head = torch.zeros(num_classes, dtype=torch.int64, device=self._storage.device)
        self.size = torch.zeros(num_classes, dtype=torch.int64, device=self._storage.device)

    @property
    def device(self) -> torch.device:
        return self._storage.device

    def push(self, keys: torch.Tensor, labels: torch.Tensor, gather: bool = False) -> None:
        """Enqueue ``keys (M, D)`` with class ``labels (M,)``; labels outside ``[0, C)`` are ignored.

        With ``gather=True`` under an initialised ``torch.distributed``, the keys and labels of all
        ranks are all-gathered (rank order) and pushed identically on every rank.
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"MemoryBank.push: keys must be [M, {self.dim}], got {tuple(keys.shape)}")
        if labels.shape != keys.shape[:1]:
            raise ValueError(f"MemoryBank.push: labels must be [{keys.shape[0]}], got {tuple(labels.shape)}")
        keys = keys.detach().to(self.device, self.bank.dtype)
        labels = labels.detach().to(self.device, torch.int64)
        if gather:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                keys, labels = _all_gather_padded(keys, labels)
        memory_bank_push(self.bank, self.head, self.size, keys, labels)

    def sizes(self) -> torch.Tensor:
        """``(C,)`` int64: keys currently stored per class."""
        return self.size.clone()

    def keys(self, c: int) -> torch.Tensor:
        """Class ``c``'s keys, oldest first, ``(size, D)``. Syncs with the host."""
        size, head = int(self.size[c]), int(self.head[c])
        slots = (head - size + torch.arange(size, device=self.device)) % self.capacity
        return self.bank[c, slots]

    def _draw(self, classes: torch.Tensor, n: int, generator, out: torch.Tensor | None = None) -> torch.Tensor:
        # float64 uniforms keep floor(u * size) uniform for any capacity; the clamp guards u * size
        # rounding up to size.
        u = torch.rand((classes.numel(), n), device=self.device, dtype=torch.float64, generator=generator)
        size = self.size[classes].unsqueeze(1)
        index = torch.minimum((u * size).long(), (size - 1).clamp_min(0))
        slots = (self.head[classes].unsqueeze(1) - size + index) % self.capacity
        rows = classes.unsqueeze(1) * self.capacity + slots
        rows = torch.where(size > 0, rows, self._storage.shape[0] - 1).reshape(-1)
        shape = (classes.numel(), n, self.dim)
        if out is None:
            return self._storage.index_select(0, rows).view(shape)
        if tuple(out.shape) != shape or out.dtype != self._storage.dtype or out.device != self.device \
                or not out.is_contiguous():
            raise ValueError(f"MemoryBank: out must be a contiguous {self._storage.dtype} tensor of shape "
                             f"{list(shape)} on {self.device}, got {out.dtype} {list(out.shape)} on {out.device}")
        torch.index_select(self._storage, 0, rows, out=out.view(-1, self.dim))
        return out

    def sample(self, c: int, n: int, generator: torch.Generator | None = None,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, D)`` keys of class ``c`` drawn uniformly with replacement; zeros if it is empty.
        ``out``: an optional preallocated ``(n, D)`` tensor to write into (and return)."""
        if not 0 <= c < self.num_classes:
            raise IndexError(f"MemoryBank.sample: class {c} outside [0, {self.num_classes})")
        drawn = self._draw(torch.tensor([c], device=self.device), n, generator, None if out is None else out.unsqueeze(0))
        return drawn[0] if out is None else out

    def sample_all(self, n: int, generator: torch.Generator | None = None,
                   out: torch.Tensor | None = None) -> torch.Tensor:
        """``(C, n, D)``: n keys per class drawn uniformly with replacement; zeros for empty classes.

        ``out``: an optional preallocated ``(C, n, D)`` tensor to write into (and return). Reusing
        one across steps skips allocating (on the CPU: page-faulting in) a fresh result each step,
        which for large draws costs more than the gather itself."""
        return self._draw(torch.arange(self.num_classes, device=self.device), n, generator, out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A plain dict of tensors (``bank``, ``head``, ``size``), loadable with weights_only=True."""
        return {"bank": self.bank, "head": self.head, "size": self.size}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a :meth:`state_dict` in; shapes must match this bank's."""
        for name in ("bank", "head", "size"):
            mine = getattr(self, name)
            if name not in state or tuple(state[name].shape) != tuple(mine.shape):
                got = tuple(state[name].shape) if name in state else "missing"
                raise ValueError(f"MemoryBank.load_state_dict: {name} must be {tuple(mine.shape)}, got {got}")
            mine.copy_(state[name])
        if bool(((self.size < 0) | (self.size > self.capacity) | (self.head < 0) | (self.head >= self.capacity)).any()):
            raise ValueError("MemoryBank.load_state_dict: head and size must lie in [0, capacity]")
