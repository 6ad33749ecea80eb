"""Run every ``bench/op_*.py`` and print one table of ours vs the peer, measured in the same run.

Usage: ``python bench/ops.py [--device cpu|cuda|all] [--repeats N] [--only OP]``.
Each module defines ``run(device, repeats) -> list[dict]`` with keys op, case, shape, ours_ms,
peer_ms, ratio, ours_peak_mb, peer_peak_mb, peer (and optionally bandwidth_share). ratio is
peer time / our time; the memory ratio is peer peak / our peak. CPU peaks are peak-RSS growth in
a fresh subprocess, CUDA peaks are max_memory_allocated (see bench/_peak.py).
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys

BENCH = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default=None,
                        help="default: cpu, plus cuda when available")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (median reported)")
    parser.add_argument("--only", default=None, help="run only bench/op_<ONLY>.py")
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    import _peak

    _peak.load_dev_libs()
    if args.device in (None, "all"):
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    names = sorted(p.stem for p in BENCH.glob("op_*.py"))
    if args.only:
        names = [n for n in names if n == f"op_{args.only}"]
        if not names:
            print(f"bench/ops.py: no bench/op_{args.only}.py", file=sys.stderr)
            return 2

    table = Table(title=f"noisyseg ops vs peers (median of {args.repeats})")
    for column in ("device", "op", "case", "shapes", "ours ms", "peer ms", "speed x", "ours MB", "peer MB",
                   "mem x", "peer", "bw share"):
        table.add_column(column, justify="right" if column.endswith(("ms", "x", "MB", "share")) else "left")
    status = Console(stderr=True)
    for device in devices:
        for name in names:
            status.print(f"[dim]running {name} on {device}[/dim]")
            for row in importlib.import_module(name).run(device, args.repeats):
                mem = row["peer_peak_mb"] / row["ours_peak_mb"] if row["ours_peak_mb"] > 0 else None
                share = row.get("bandwidth_share")
                table.add_row(device, row["op"], row["case"], row["shape"], _fmt(row["ours_ms"], ".2f"),
                              _fmt(row["peer_ms"], ".2f"), _fmt(row["ratio"], ".1f"), _fmt(row["ours_peak_mb"], ".0f"),
                              _fmt(row["peer_peak_mb"], ".0f"), _fmt(mem, ".1f"), row["peer"],
                              _fmt(share * 100, ".0f") + "%" if share is not None else "-")
    Console(width=240).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
