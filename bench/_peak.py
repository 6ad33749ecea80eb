"""Shared bench helpers: median wall time and peak memory of one call.

Peak memory is measured the same way for ours and the peer:
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what was
  allocated before the call (inputs excluded).
- CPU: a fresh ``python`` subprocess builds the inputs, resets the peak resident set size to the
  current one (Linux ``/proc/self/clear_refs``; where that is refused, ``ru_maxrss`` as is), runs
  the callable once, and reports how far the peak RSS grew, in MB. So the CPU figure is peak-RSS
  growth over the inputs (allocator caching makes it approximate, the same way for both sides;
  without the reset it cannot show less than the peak reached while building inputs).

A callable is named by ``(module, factory, args)``: ``getattr(import_module(module), factory)(*args)``
must build the inputs and return a zero-argument function; ``args`` must be ``repr``-able literals
so the subprocess can rebuild them.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent


def load_dev_libs() -> None:
    """Load out-of-tree kernel builds named in ``NOISYSEG_DEV_LIBS`` (as tests/conftest.py does)."""
    for lib in filter(None, os.environ.get("NOISYSEG_DEV_LIBS", "").split(os.pathsep)):
        torch.ops.load_library(lib)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(fn: Callable[[], object], device: str, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


_SNIPPET = """
import gc, importlib, resource, sys
sys.path[:0] = [{bench!r}, {root!r}]
import _peak
_peak.load_dev_libs()
fn = getattr(importlib.import_module({module!r}), {factory!r})(*{args!r})
gc.collect()
base = _peak._reset_peak_rss_kb()
fn()
print("PEAK_KB", _peak._peak_rss_kb() - base)
"""


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _reset_peak_rss_kb() -> int:
    """Reset the peak RSS to the current RSS (Linux clear_refs "5"), so building the inputs does
    not mask the call's own peak; returns the new baseline in KiB. Falls back to ru_maxrss."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _peak_rss_kb()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_mb(device: str, module: str, factory: str, args: tuple = ()) -> float:
    """Peak memory (MB) one call of the built function needs beyond its inputs (see module doc)."""
    if device.startswith("cuda"):
        fn = getattr(importlib.import_module(module), factory)(*args)
        _sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    code = _SNIPPET.format(bench=str(BENCH), root=str(ROOT), module=module, factory=factory, args=tuple(args))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kb = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("PEAK_KB"))
    return int(kb) / 1024  # ru_maxrss is in KiB on Linux


def grad_step(fn: Callable, inputs: tuple, backward: bool) -> Callable[[], None]:
    """A zero-argument step: ``fn(*inputs)``, plus the backward of its sum when ``backward``
    (the grads of ``inputs`` are cleared after each step so they do not pile up)."""
    def step() -> None:
        with torch.set_grad_enabled(backward):
            out = fn(*inputs)
            if backward:
                out.sum().backward()
                for x in inputs:
                    if isinstance(x, torch.Tensor):
                        x.grad = None

    return step


def forward_backward_rows(op: str, module: str, device: str, repeats: int, shape: str, peer: str,
                          extra: tuple = (), case: str = "") -> list[dict]:
    """Rows "forward" and "forward+backward" (each followed by ``case``) for a bench module whose
    ``build_ours(device, backward, *extra)`` and ``build_peer(device, backward, *extra)`` return
    steps (see :func:`grad_step`)."""
    mod = importlib.import_module(module)
    rows = []
    for backward in (False, True):
        args = (device, backward, *extra)
        ours_ms = median_ms(mod.build_ours(*args), device, repeats)
        peer_ms = median_ms(mod.build_peer(*args), device, repeats)
        rows.append(dict(op=op, case=("forward+backward" if backward else "forward") + case, shape=shape,
                         ours_ms=ours_ms, peer_ms=peer_ms, ratio=peer_ms / ours_ms,
                         ours_peak_mb=peak_mb(device, module, "build_ours", args),
                         peer_peak_mb=peak_mb(device, module, "build_peer", args), peer=peer))
    return rows


def case_row(op: str, module: str, case: str, args: tuple, shape: str, peer: str, device: str, repeats: int,
             agree: Callable[[object, object], bool]) -> dict:
    """One row for a bench module whose ``build_ours(*args)`` and ``build_peer(*args)`` return
    zero-argument calls: checks ``agree(ours(), peer())`` first, then times both and measures
    their peaks."""
    mod = importlib.import_module(module)
    ours_fn, peer_fn = mod.build_ours(*args), mod.build_peer(*args)
    assert agree(ours_fn(), peer_fn()), f"{op}: peer disagrees ({case})"
    ours_ms = median_ms(ours_fn, device, repeats)
    peer_ms = median_ms(peer_fn, device, repeats)
    del ours_fn, peer_fn
    return dict(op=op, case=case, shape=shape, ours_ms=ours_ms, peer_ms=peer_ms, ratio=peer_ms / ours_ms,
                ours_peak_mb=peak_mb(device, module, "build_ours", args),
                peer_peak_mb=peak_mb(device, module, "build_peer", args), peer=peer)


def print_rows(rows: list[dict]) -> None:
    """One line per row, for running a bench module on its own."""
    for r in rows:
        print(f"{r['op']:16s} {r['case']:17s} ours {r['ours_ms']:9.1f} ms  peer {r['peer_ms']:9.1f} ms  "
              f"x{r['ratio']:6.1f}  peak ours {r['ours_peak_mb']:7.1f} MB  peer {r['peer_peak_mb']:7.1f} MB  "
              f"[{r['shape']}; peer: {r['peer']}]")
