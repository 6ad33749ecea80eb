"""``noisyseg report`` against cleanlab's segmentation summary on the same probs: time and peak memory.

    python bench/report.py --probs DIR [--data ../shared/datasets/camvid] [--split train]
                           [--labels NOISY] [--limit N] [--make-probs EPOCHS]

Ours: the whole report (two streaming passes: softmin image scores, cleanlab's label-issue rule,
flags, confusions, per-class table, calibration, quality against ground truth, gallery of 12,
plots, HTML), reading the files itself. cleanlab: the files read into one dense float32
``(N, K, H, W)`` array (as its API needs), then ``get_label_quality_scores`` (softmin) and
``common_label_issues`` over the issues of ``find_label_issues`` (its input; timed on its own
row). The same three calls then run through noisyseg's cleanlab-compatible API on the same dense
arrays, in the same process (after cleanlab's peak memory was read), with the flags compared. cleanlab rejects the ignore label 255, so its labels take the model's argmax there (never an
issue). Both sides run in their own process with one thread (OMP_NUM_THREADS=1), after every input
file has been read once (warm page cache); peak memory is each process's peak RSS.

Without ``--labels``, noisy labels are made with ``noisyseg corrupt --seed 0`` (seconds). Probs
must exist (``noisyseg predict``); ``--make-probs EPOCHS`` trains a clean model on ``val`` for that
many epochs and predicts the split into ``--probs`` first (minutes to hours on a CPU). Without
cleanlab installed the peer rows are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "camvid"
ONE_THREAD = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

OURS = textwrap.dedent("""
    import json, resource, sys, time
    from noisyseg.pipeline.report import report
    data, split, labels, probs, out = sys.argv[1:6]
    start = time.perf_counter()
    r = report(data, split, labels, probs, out, worst=12, device="cpu", force=True)  # the CLI defaults
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "timings": r["timings"], "flagged_pixels": r["flagged_pixels"],
                      "images": r["images"], "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

CLEANLAB = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from noisyseg.io import Dataset, LabelDir, ProbsDir
    data, split, labels, probs = sys.argv[1:5]
    from cleanlab.segmentation.filter import find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores
    from cleanlab.segmentation.summary import common_label_issues
    ds = Dataset(data); ids = ds.ids(split)
    t = {}
    start = time.perf_counter()
    P = np.stack([ProbsDir(probs).read(i, ds.num_classes).astype(np.float32) for i in ids])
    L = np.stack([LabelDir(labels).read(i, ds.num_classes) for i in ids]).astype(np.int64)
    L = np.where(L == 255, P.argmax(1), L)
    t["load"] = time.perf_counter() - start
    start = time.perf_counter()
    scores, _ = get_label_quality_scores(L, P, verbose=False)
    t["get_label_quality_scores"] = time.perf_counter() - start
    start = time.perf_counter()
    issues = find_label_issues(L, P, n_jobs=1, verbose=False)
    t["find_label_issues"] = time.perf_counter() - start
    start = time.perf_counter()
    table = common_label_issues(issues, L, P, class_names=ds.classes, verbose=False)
    t["common_label_issues"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import noisyseg  # the same three calls through noisyseg's cleanlab-compatible API, same arrays
    ours = {}
    start = time.perf_counter()
    our_scores, _ = noisyseg.get_label_quality_scores(L, P, verbose=False)
    ours["get_label_quality_scores"] = time.perf_counter() - start
    start = time.perf_counter()
    our_issues = noisyseg.find_label_issues(L, P, verbose=False)
    ours["find_label_issues"] = time.perf_counter() - start
    start = time.perf_counter()
    our_table = noisyseg.common_label_issues(our_issues, L, P, class_names=ds.classes, verbose=False)
    ours["common_label_issues"] = time.perf_counter() - start
    same = {"flags_differing": int((our_issues != issues).sum()), "table": our_table.to_dict("records") == table.to_dict("records"),
            "scores": float(np.abs(our_scores - scores).max())}
    print(json.dumps({"timings": t, "api": ours, "same": same, "flagged_pixels": int(issues.sum()),
                      "images": len(ids), "peak_mb": peak}))
""")


def run(code: str, *args) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=ONE_THREAD)
    if result.returncode:
        raise SystemExit(f"bench/report.py: a run failed:\n{result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def noisyseg(*args) -> None:
    subprocess.run([sys.executable, "-m", "noisyseg.cli.main", *map(str, args)], check=True, env=ONE_THREAD,
                   stdout=subprocess.DEVNULL)


def dataset_view(data: Path, split: str, limit: int | None, tmp: Path) -> Path:
    """``data`` itself, or a view of it whose ``split`` holds its first ``limit`` images."""
    if not limit:
        return data
    view = tmp / "data"
    (view / "splits").mkdir(parents=True)
    for name in ("images", "masks", "dataset.json"):
        if (data / name).exists():
            os.symlink((data / name).resolve(), view / name)
    ids = [x for x in (data / "splits" / f"{split}.txt").read_text().split() if x]
    (view / "splits" / f"{split}.txt").write_text("\n".join(ids[:limit]) + "\n")
    return view


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="train")
    ap.add_argument("--probs", type=Path, required=True, help="probs dir of a model for the split")
    ap.add_argument("--labels", type=Path, help="noisy label dir (default: noisyseg corrupt --seed 0 into a temp dir)")
    ap.add_argument("--limit", type=int, help="only the split's first N images")
    ap.add_argument("--make-probs", type=int, metavar="EPOCHS",
                    help="train on val for EPOCHS and predict the split into --probs when it has no probs yet")
    ap.add_argument("--no-cleanlab", action="store_true")
    args = ap.parse_args()
    if not (args.data / "dataset.json").is_file():
        print(f"bench/report.py: {args.data} not found, skipping")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = dataset_view(args.data, args.split, args.limit, tmp)
        if args.make_probs and not any(args.probs.glob("*.npy")):
            run_dir = args.probs.parent / "run"
            noisyseg("train", args.data, "--split", "val", "--out", run_dir, "--epochs", args.make_probs)
            noisyseg("predict", run_dir, data, "--split", args.split, "--out", args.probs.parent)
        labels = args.labels
        if labels is None:
            labels = tmp / "noisy"
            noisyseg("corrupt", data, "--split", args.split, "--seed", "0", "--out", labels)
        ids = [x for x in (data / "splits" / f"{args.split}.txt").read_text().split() if x]
        missing = [i for i in ids if not (args.probs / f"{i}.npy").is_file()]
        if missing:
            raise SystemExit(f"bench/report.py: {args.probs / (missing[0] + '.npy')}: expected probs for every image "
                             f"of '{args.split}', {len(missing)} of {len(ids)} missing (noisyseg predict, or --make-probs)")
        warm([args.probs / f"{i}.npy" for i in ids] + [labels / f"{i}.png" for i in ids])

        ours = run(OURS, data, args.split, labels, args.probs, tmp / "report")
        print(f"{len(ids)} images of '{args.split}', probs {args.probs}")
        print(f"{'':34s} {'seconds':>9s} {'peak MB':>9s} {'flagged px':>11s}")
        print(f"{'noisyseg report (everything)':34s} {ours['seconds']:9.2f} {ours['peak_mb']:9.0f} {ours['flagged_pixels']:11d}")
        print("   stages: " + ", ".join(f"{k} {v:.2f}" for k, v in ours["timings"].items()))
        try:
            import cleanlab  # noqa: F401
        except ImportError:
            args.no_cleanlab = True
            print("cleanlab is not installed (pip install cleanlab): peer rows skipped")
        if args.no_cleanlab:
            return
        peer = run(CLEANLAB, data, args.split, labels, args.probs)
        t = peer["timings"]
        summary = t["get_label_quality_scores"] + t["common_label_issues"]
        everything = summary + t["load"] + t["find_label_issues"]
        for name, seconds in (("cleanlab: load dense float32", t["load"]),
                              ("cleanlab: get_label_quality_scores", t["get_label_quality_scores"]),
                              ("cleanlab: find_label_issues", t["find_label_issues"]),
                              ("cleanlab: common_label_issues", t["common_label_issues"])):
            print(f"{name:34s} {seconds:9.2f}")
        print(f"{'cleanlab: scores + common':34s} {summary:9.2f} {'':9s}")
        print(f"{'cleanlab: all four':34s} {everything:9.2f} {peer['peak_mb']:9.0f} {peer['flagged_pixels']:11d}")
        print(f"report vs scores + common: {summary / ours['seconds']:.1f}x faster; vs all four: "
              f"{everything / ours['seconds']:.1f}x faster at {ours['peak_mb'] / peer['peak_mb']:.2f} of the memory")
        api = peer["api"]
        print("same dense arrays through noisyseg's cleanlab-compatible API (noisyseg.<name>):")
        for name in ("get_label_quality_scores", "find_label_issues", "common_label_issues"):
            print(f"  {name:26s} ours {api[name]:8.2f} s   cleanlab {t[name]:8.2f} s   x{t[name] / api[name]:7.1f}")
        ours_sc, theirs_sc = api["get_label_quality_scores"] + api["common_label_issues"], summary
        print(f"  scores + common: x{theirs_sc / ours_sc:.1f}; flags differing: {peer['same']['flags_differing']} pixels "
              f"(ties at the cutoff: cleanlab breaks them with an unstable argsort); same table: {peer['same']['table']}; "
              f"image scores within {peer['same']['scores']:.1e}")


if __name__ == "__main__":
    main()
