"""Detection strategies side by side, and cleanlab's segmentation find_label_issues on the same inputs.

Prints, per method: seconds (detection including reading the inputs), peak RSS of its process,
precision / recall / F1 of the flagged pixels against the true noise, AUROC of the score, images/s,
and the speed and memory ratios against cleanlab.

Inputs come from the CamVid chain (bench/camvid_chain.sh): noisy labels, clean-model probs.
Before each timed run every input file is read once (unless --cold), so both sides start from a
warm page cache: a cold read of one 360x480 float16 probs map (3.8 MB) takes ~11 ms on these
machines' disks, more than our whole per-image detection.

    python bench/detect.py [--chain out/camvid] [--split train] [--limit 60] [--strategies small-loss,small-loss-w21,confident]

cleanlab (installed for the bench only: pip install cleanlab) rejects the ignore label 255, so its
input labels take the model's argmax on ignored pixels; those pixels are left out of every metric.
It runs with n_jobs=1, as do we: every process of this bench runs with OMP_NUM_THREADS=1 (one
core each), which also keeps the comparison fair on a shared machine. Our seconds are
``timings.fit + timings.detect`` of ``noisyseg detect``: reading inputs, any statistics or
calibration pass, detection and writing the cleaned labels; the quality figures against ground
truth (``timings.evaluate``) are left out on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "camvid"
ONE_THREAD = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

CLEANLAB = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from noisyseg.io import Dataset, LabelDir, ProbsDir
    from noisyseg.metrics import DetectionQuality
    data, split, labels, probs = sys.argv[1:5]
    from cleanlab.segmentation.filter import find_label_issues
    ds = Dataset(data); ids = ds.ids(split)
    start = time.perf_counter()
    P = np.stack([ProbsDir(probs).read(i, ds.num_classes).astype(np.float32) for i in ids])
    L = np.stack([LabelDir(labels).read(i, ds.num_classes) for i in ids]).astype(np.int64)
    ignored = L == 255
    L = np.where(ignored, P.argmax(1), L)
    issues = find_label_issues(L, P, n_jobs=1, verbose=False)
    seconds = time.perf_counter() - start
    q = DetectionQuality()
    for k, i in enumerate(ids):
        noisy = np.where(ignored[k], 255, L[k]).astype(np.uint8)
        q.update(ds.load_mask(i), noisy, issues[k])
    out = q.summary() | {"seconds": seconds, "images": len(ids),
                         "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(out))
""")


def dataset_view(data: Path, split: str, limit: int, tmp: Path) -> Path:
    """A dataset dir that links to ``data``'s images and masks with splits cut to ``limit`` images."""
    view = tmp / "data"
    (view / "splits").mkdir(parents=True)
    for name in ("images", "masks", "dataset.json"):
        os.symlink(data / name, view / name)
    for s in (data / "splits").glob("*.txt"):
        ids = [x for x in s.read_text().split() if x]
        (view / "splits" / s.name).write_text("\n".join(ids[:limit] if s.stem == split else ids) + "\n")
    return view


def warm_cache(data: Path, chain: Path, splits: list[str]) -> None:
    """Reads every probs and noisy-label file of ``splits`` once, so that each timed run starts with
    the same (warm) page cache instead of whatever the previous run left there."""
    for split in splits:
        for image_id in (data / "splits" / f"{split}.txt").read_text().split():
            for path in (chain / "preds" / "probs" / f"{image_id}.npy", chain / "noisy" / f"{image_id}.png"):
                if path.is_file():
                    path.read_bytes()


def relabel_like_cleanlab(view: Path, split: str, chain: Path, out: Path) -> Path:
    """The noisy labels as cleanlab gets them: ignored pixels (255) take the model's argmax."""
    from noisyseg.io import Dataset, LabelDir, ProbsDir

    ds, noisy, probs = Dataset(view), LabelDir(chain / "noisy"), ProbsDir(chain / "preds" / "probs")
    for image_id in ds.ids(split):
        label = noisy.read(image_id, ds.num_classes)
        argmax = probs.read(image_id, ds.num_classes).argmax(0).astype(np.uint8)
        LabelDir(out).write(image_id, np.where(label == 255, argmax, label))
    return out


def score_against_noisy(view: Path, split: str, chain: Path, cleaned: Path) -> dict:
    """Detection quality of a run on relabelled input, counted like cleanlab's: against the true
    noise, over the pixels the original noisy labels label."""
    from noisyseg.io import Dataset, LabelDir
    from noisyseg.metrics import DetectionQuality

    ds, noisy, out = Dataset(view), LabelDir(chain / "noisy"), LabelDir(cleaned)
    q = DetectionQuality()
    for image_id in ds.ids(split):
        label = noisy.read(image_id, ds.num_classes)
        q.update(ds.load_mask(image_id), label, (out.read(image_id, ds.num_classes) == 255) & (label != 255))
    return q.summary()


def run_ours(view: Path, split: str, chain: Path, strategy: str, params: list[str], out: Path,
             labels: Path | None = None) -> dict:
    code = ("import json, resource, sys; from noisyseg.pipeline.detect import detect; "
            "r = detect(*sys.argv[1:7], params=json.loads(sys.argv[7]), scores=False, device='cpu'); "
            "print(json.dumps(r['detection_quality'] | {'seconds': r['timings']['fit'] + r['timings']['detect'], 'fit': r['timings']['fit'], "
            "'images': r['images'], 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    p = dict(x.split("=", 1) for x in params)
    cmd = [sys.executable, "-c", code, str(view), split, str(labels or chain / "noisy"), str(chain / "preds" / "probs"), strategy,
           str(out), json.dumps(p)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ONE_THREAD)
    if result.returncode:
        raise SystemExit(f"{strategy} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--chain", type=Path, default=ROOT / "out" / "camvid")
    ap.add_argument("--split", default="train")
    ap.add_argument("--calibrate-split", default="val")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--strategies", default="small-loss,small-loss-w21,entropy,confident,urn",
                    help="strategies, or the variants small-loss-w21 (the CamVid chain's small-loss, window=21), "
                         "confident-joint (rule=joint) and confident-cleanlab-input (confident on the labels "
                         "cleanlab gets: ignored pixels relabelled as the argmax; scored like cleanlab)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per method, interleaved; medians are printed")
    ap.add_argument("--no-cleanlab", action="store_true")
    ap.add_argument("--cold", action="store_true",
                    help="do not read the inputs once before each timed run (times then depend on the page cache)")
    args = ap.parse_args()
    if not (args.data / "dataset.json").is_file() or not (args.chain / "preds" / "probs").is_dir():
        print(f"bench/detect.py: needs {args.data} and the chain outputs in {args.chain} (bench/camvid_chain.sh); skipping")
        return
    small = ["theta=auto", f"calibrate_split={args.calibrate_split}"]
    configs = {"small-loss": ("small-loss", small), "small-loss-w21": ("small-loss", small + ["window=21"]),
               "entropy": ("entropy", ["alpha=0.2"]), "confident": ("confident", []),
               "confident-joint": ("confident", ["rule=joint"]), "urn": ("urn", ["crf=false"]),
               "confident-cleanlab-input": ("confident", [])}
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        view = dataset_view(args.data, args.split, args.limit, Path(tmp))
        relabelled = None
        if "confident-cleanlab-input" in args.strategies.split(","):
            relabelled = relabel_like_cleanlab(view, args.split, args.chain, Path(tmp) / "relabelled")
        for rep in range(args.repeats):  # interleaved, so that load on a shared machine hits all alike
            for name in args.strategies.split(","):
                strategy, params = configs.get(name, (name, []))
                if not args.cold:
                    warm_cache(view, args.chain, [args.split, args.calibrate_split])
                out = Path(tmp) / f"{name}-{rep}"
                if name == "confident-cleanlab-input":  # timed on cleanlab's input, scored like cleanlab
                    result = run_ours(view, args.split, args.chain, strategy, params, out, labels=relabelled)
                    result = result | score_against_noisy(view, args.split, args.chain, out) | {"auroc": float("nan")}
                else:
                    result = run_ours(view, args.split, args.chain, strategy, params, out)
                runs.setdefault(name, []).append(result)
            if not args.no_cleanlab:
                if not args.cold:
                    warm_cache(view, args.chain, [args.split])
                result = subprocess.run([sys.executable, "-c", CLEANLAB, str(view), args.split, str(args.chain / "noisy"),
                                         str(args.chain / "preds" / "probs")], capture_output=True, text=True,
                                        env=ONE_THREAD)
                if result.returncode:
                    print(f"cleanlab did not run ({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no output'})")
                    args.no_cleanlab = True
                else:
                    runs.setdefault("cleanlab find_label_issues", []).append(json.loads(result.stdout.strip().splitlines()[-1]))
    rows = {}
    for name, results in runs.items():
        med = lambda key: statistics.median(r.get(key, 0.0) for r in results)  # noqa: E731
        rows[name] = results[0] | {"seconds": med("seconds"), "fit": med("fit"), "peak_mb": max(r["peak_mb"] for r in results)}
    peer = rows.get("cleanlab find_label_issues")
    print(f"detection on {args.split} ({args.limit} images of {args.data.name}), CPU, one process, "
          f"median of {args.repeats}; one thread each; page cache {'cold' if args.cold else 'warmed before each run'}; sec = reading inputs + detection + "
          "writing outputs (evaluation against GT excluded), of which fit = calibration / statistics pass")
    print(f"{'method':28s} {'fit':>6s} {'sec':>8s} {'img/s':>7s} {'peak MB':>8s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'AUROC':>6s} {'speedup':>8s} {'mem ratio':>9s}")
    for name, r in rows.items():
        speed = f"{peer['seconds'] / r['seconds']:.1f}x" if peer else "-"
        mem = f"{r['peak_mb'] / peer['peak_mb']:.2f}" if peer else "-"
        print(f"{name:28s} {r['fit']:6.2f} {r['seconds']:8.2f} {r['images'] / r['seconds']:7.2f} {r['peak_mb']:8.0f} {r['precision']:6.4f} "
              f"{r['recall']:6.4f} {r['f1']:6.4f} {r.get('auroc', float('nan')):6.3f} {speed:>8s} {mem:>9s}")


if __name__ == "__main__":
    main()
