"""Bench one U2PL memory-bank step: push ~5k labelled keys, then 256 anchors x 50 negatives per class.

C=21 classes, capacity 30000, D=256, banks warmed to full first. A step pushes 5000 keys with
random labels and draws 256*50 = 12800 keys for every class, (21, 12800, 256) in all.
Peers, both per-class Python lists of tensors:
- ``u2pl``: as the authors' code does it: each class's new keys are ``.detach().clone().cpu()``ed,
  ``torch.cat`` onto a host-side queue and sliced to the newest ``capacity``; sampling copies the
  queue to the device (``queue.clone().to(device)``, U2PL's ``.clone().cuda()``) and indexes it
  with ``torch.randint``. On a CPU run the copies stay in host memory.
- ``lists-on-device``: the same lists kept on the device, without the clone: a stronger peer.
Ours: ``MemoryBank.push`` + ``MemoryBank.sample_all``, returning a fresh tensor like the peers, and
(row ``+ out buffer``) writing into one preallocated ``out`` tensor reused across steps, which
spares the allocation (on the CPU, page-faulting in 275 MB per step).
"""

from __future__ import annotations

import sys

import torch

import _peak

_peak.load_dev_libs()

from noisyseg.ops import MemoryBank  # noqa: E402

C, CAPACITY, DIM, PUSH, SAMPLES = 21, 30000, 256, 5000, 256 * 50


def _batch(device, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(PUSH, DIM, generator=g).to(device), torch.randint(0, C, (PUSH,), generator=g).to(device)


def build_ours(device, reuse_out=False):
    bank = MemoryBank(C, CAPACITY, DIM, device=device)
    bank.push(torch.randn(C * CAPACITY, DIM, device=device), torch.arange(C, device=device).repeat(CAPACITY))
    keys, labels = _batch(device, 1)
    out = torch.empty(C, SAMPLES, DIM, device=device) if reuse_out else None

    def step():
        bank.push(keys, labels)
        return bank.sample_all(SAMPLES, out=out)

    return step


def build_peer(device, on_device=False):
    home = device if on_device else "cpu"
    queues = [torch.randn(CAPACITY, DIM).to(home) for _ in range(C)]
    keys, labels = _batch(device, 1)

    def step():
        for c in range(C):
            new = keys[labels == c].detach()
            new = new if on_device else new.clone().cpu()
            queues[c] = torch.cat((queues[c], new), dim=0)
            if queues[c].shape[0] >= CAPACITY:
                queues[c] = queues[c][-CAPACITY:, :]
        out = []
        for c in range(C):
            negatives = queues[c] if on_device else queues[c].clone().to(device)
            index = torch.randint(len(negatives), size=(SAMPLES,))
            out.append(negatives[index.to(negatives.device)])
        return torch.stack(out)

    return step


def run(device: str, repeats: int) -> list[dict]:
    rows = []
    shape = f"C={C} cap={CAPACITY} D={DIM} push={PUSH} sample={SAMPLES}/class"
    for case, on_device, reuse in (("u2pl", False, False), ("u2pl", False, True), ("lists-on-device", True, False)):
        ours_fn, peer_fn = build_ours(device, reuse), build_peer(device, on_device)
        ours_ms = _peak.median_ms(ours_fn, device, repeats)
        peer_ms = _peak.median_ms(peer_fn, device, repeats)
        del ours_fn, peer_fn
        rows.append(dict(op="memory_bank", case=f"step{' + out buffer' if reuse else ''} vs {case}", shape=shape,
                         ours_ms=ours_ms, peer_ms=peer_ms,
                         ratio=peer_ms / ours_ms,
                         ours_peak_mb=_peak.peak_mb(device, "op_memory_bank", "build_ours", (device, reuse)),
                         peer_peak_mb=_peak.peak_mb(device, "op_memory_bank", "build_peer", (device, on_device)),
                         peer=f"U2PL per-class lists ({'device' if on_device else 'host queue + clone'})"))
    return rows


if __name__ == "__main__":
    _peak.print_rows(run(sys.argv[1] if len(sys.argv) > 1 else "cpu", int(sys.argv[2]) if len(sys.argv) > 2 else 3))
