"""``noisyseg corrupt``: noisy label dirs from ground truth, with the true noise rate recorded.

With ``target_rate`` the mix's strength is chosen first (``choose_strength``): the scale of
``noisyseg.noise.scale_steps`` is searched on up to ``SEARCH_IMAGES`` images of the split, then the
rate over the whole split is checked (and the scale refined on the whole split when it is off by
more than ``TARGET_TOLERANCE``). Only then is anything written; the chosen spec is the run's noise.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import ParameterError
from noisyseg.io import Dataset, LabelDir
from noisyseg.noise import (DEFAULT_NOISE, NoiseStep, corrupt_mask, image_rng, parse_noise_spec, saturation_scale,
                            scale_steps)
from noisyseg.noise.strength import find_scale
from noisyseg.pipeline.common import RUN_FILE, OutputDir, Timer, Track, check_seed, no_track, write_report
from noisyseg.pipeline.output import replacing_marker

TARGET_TOLERANCE = 0.01  # the whole split's rate ends within this of --target-rate
SEARCH_IMAGES = 64  # the scale is searched on at most this many images of the split...
MAX_SCALE = 8.0  # ...in [0, max(MAX_SCALE, the scale where every chance of the mix is 1)]
WHOLE_SPLIT_EVALS = 8  # at most this many passes over the whole split when refining
KEEP_PIXELS = 1 << 28  # the last whole-split pass's labels are kept to be written when they fit


def noise_rate(gt: np.ndarray, noisy: np.ndarray) -> tuple[int, int]:
    """(wrong pixels, pixels with a GT label): a pixel is wrong when its noisy label differs from GT."""
    valid = gt != IGNORE_INDEX
    return int(((noisy != gt) & valid).sum()), int(valid.sum())


def check_target_rate(target: Any) -> float:
    """``target`` as a float in (0, 1); anything else raises ``ParameterError``."""
    number = isinstance(target, (int, float)) and not isinstance(target, bool)
    if not number or not (math.isfinite(target) and 0 < target < 1):
        found = f"{target:g}" if number else repr(target)
        raise ParameterError(f"--target-rate: expected a number in (0, 1), the share of pixels to make wrong, "
                             f"found {found}")
    return float(target)


def search_subset(ids: list[str], n: int | None = None) -> list[str]:
    """Up to ``n`` (``SEARCH_IMAGES``) of ``ids``, chosen by a hash of the id (the same whatever the
    split's order), in the split's order."""
    n = SEARCH_IMAGES if n is None else n
    if len(ids) <= n:
        return list(ids)
    chosen = set(sorted(ids, key=lambda i: (zlib.crc32(i.encode()), i))[:n])
    return [i for i in ids if i in chosen]


def spec_string(steps: list[NoiseStep]) -> str:
    return "+".join(map(str, steps))


class _Rates:
    """The wrong-pixel rate of a mix at scale s over a set of images, each spec measured once."""

    def __init__(self, ds: Dataset, ids: list[str], sizes: dict, steps: list[NoiseStep], seed: int, track: Track,
                 label: str, preload: bool = False, keep: bool = False):
        self.ds, self.ids, self.sizes, self.steps, self.seed = ds, ids, sizes, steps, seed
        self.track, self.label = track, label
        self.masks = {i: ds.load_mask(i, sizes[i]) for i in ids} if preload else None
        self.keep = keep
        self.rates: dict[str, float] = {}
        self.kept: tuple[str, dict[str, np.ndarray]] | None = None  # (spec, labels) of the last pass

    def steps_at(self, s: float) -> list[NoiseStep]:
        # Parsed from its string, so what runs is exactly what the report and run params say.
        return parse_noise_spec(spec_string(scale_steps(self.steps, s)))

    def __call__(self, s: float) -> float:
        steps = self.steps_at(s)
        spec = spec_string(steps)
        if spec not in self.rates:
            labels: dict[str, np.ndarray] | None = {} if self.keep else None
            wrong_total = valid_total = 0
            for image_id in self.track(self.ids, len(self.ids), f"{self.label}: scale {s:g}"):
                gt = self.masks[image_id] if self.masks is not None else self.ds.load_mask(image_id, self.sizes[image_id])
                noisy = corrupt_mask(gt, steps, image_rng(self.seed, image_id), self.ds.num_classes)
                if labels is not None:
                    labels[image_id] = noisy
                wrong, valid = noise_rate(gt, noisy)
                wrong_total += wrong
                valid_total += valid
            self.rates[spec] = wrong_total / valid_total if valid_total else 0.0
            if labels is not None:
                self.kept = (spec, labels)
        return self.rates[spec]


def choose_strength(ds: Dataset, ids: list[str], sizes: dict, steps: list[NoiseStep], seed: int, target: float,
                    split: str = "", track: Track = no_track) -> tuple[list[NoiseStep], dict, dict | None]:
    """The scaled mix whose wrong-pixel rate over ``ids`` is within ``TARGET_TOLERANCE`` of ``target``.

    Returns (steps, what was chosen and how, for the report; the labels of the chosen steps when
    they were kept from the last pass, else None). Raises ``ParameterError`` when the mix cannot
    reach the target, or when its rate jumps over it.
    """
    subset = search_subset(ids)
    whole = len(subset) == len(ids)
    max_scale = max(MAX_SCALE, round(saturation_scale(steps), 4))
    name = f"split '{split}'" if split else "the split"
    pixels = sum(h * w for h, w in (sizes[i] for i in ids))
    on_split = _Rates(ds, ids, sizes, steps, seed, track, f"target rate {target:g} ({len(ids)} images)",
                      preload=whole, keep=pixels <= KEEP_PIXELS)
    on_subset = on_split if whole else _Rates(ds, subset, sizes, steps, seed, track,
                                              f"target rate {target:g} ({len(subset)} images)", preload=True)
    # On a subset, aim at half the tolerance: the whole split's rate differs a little from it.
    first = find_scale(on_subset, target, TARGET_TOLERANCE if whole else TARGET_TOLERANCE / 2, max_scale)
    searches = [{"images": len(subset), "scale": s, "rate": r} for s, r in first.points]

    def unreachable(search) -> ParameterError:  # every rate measured is below the target: best is the largest
        s, rate = search.best
        return ParameterError(f"--target-rate: expected at most {rate:.4f}, the largest wrong-pixel rate the noise "
                              f"mix reached on {name} (at scale {s:g}; scales up to {max_scale:g} tried), "
                              f"found {target:g}")

    def jumps(search) -> ParameterError:
        s, rate = search.best
        if search.hi is not None:
            (s0, r0), (s1, r1) = search.lo, search.hi
            where = f"the rate jumps over it from {r0:.4f} at scale {s0:g} to {r1:.4f} at scale {s1:g}"
        else:
            where = f"the nearest was {rate:.4f}, at scale {s:g}"
        return ParameterError(f"--target-rate: expected a rate the noise mix hits within {TARGET_TOLERANCE:g} on {name}, "
                              f"found {target:g} ({where}; more images make the rate finer)")

    if whole:
        if first.unreachable:
            raise unreachable(first)
        if not first.found:
            raise jumps(first)
        scale, rate = first.best
    else:
        scale = first.best[0]  # when unreachable on the subset, the largest rate: the whole split may differ
        rate = on_split(scale)
        searches.append({"images": len(ids), "scale": scale, "rate": rate})
        if abs(rate - target) > TARGET_TOLERANCE:  # refine once more, on the whole split
            guess = scale * target / rate if rate > 0 else scale * 2
            again = find_scale(on_split, target, TARGET_TOLERANCE, max_scale, start=guess, known=[(scale, rate)],
                               max_evals=WHOLE_SPLIT_EVALS)
            searches += [{"images": len(ids), "scale": s, "rate": r} for s, r in again.points]
            if again.unreachable:
                raise unreachable(again)
            if not again.found:
                raise jumps(again)
            scale, rate = again.best
    chosen = on_split.steps_at(scale)
    spec = spec_string(chosen)
    labels = on_split.kept[1] if on_split.kept is not None and on_split.kept[0] == spec else None
    info = {"target": target, "tolerance": TARGET_TOLERANCE, "scale": scale, "noise": spec,
            "base_noise": spec_string(steps), "rate": rate, "iterations": len(searches),
            "search_images": len(subset), "max_scale": max_scale, "searches": searches}
    return chosen, info, labels


def _marker_params(out: Path) -> Any:
    try:
        marker = json.loads((Path(out) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker.get("params") if isinstance(marker, dict) and marker.get("command") == "corrupt" else None


def corrupt(dataset: str | Path, split: str, out: str | Path, seed: int = 0, noise: str = DEFAULT_NOISE,
            target_rate: float | None = None, force: bool = False, track: Track = no_track) -> dict:
    """Corrupts the GT masks of ``split`` into the label dir ``out``; returns the report.

    Deterministic per (seed, image id). A rerun skips images already written. With
    ``target_rate``, ``noise`` is scaled first until the split's wrong-pixel rate is within
    ``TARGET_TOLERANCE`` of it (see ``choose_strength``); a rerun makes the same choice and resumes.
    """
    ds = Dataset(dataset)
    steps = parse_noise_spec(noise)
    check_seed(seed)
    target = None if target_rate is None else check_target_rate(target_rate)
    ids = ds.ids(split)
    sizes = {i: ds.image_size(i) for i in ids}  # every image header is read before anything is written
    params: dict[str, Any] = {"dataset": str(Path(dataset).resolve()), "seed": seed, "noise": [str(s) for s in steps]}
    timer = Timer()
    chosen_info = kept = None
    if target is not None:
        params["target_rate"] = target
        # Refuse now, not after the search, an output dir that no choice of strength would resume.
        previous = _marker_params(Path(out))
        resumable = isinstance(previous, dict) and {k: v for k, v in previous.items() if k != "noise"} == \
            {k: v for k, v in params.items() if k != "noise"}
        if not resumable:
            replacing_marker(out, "corrupt", params, force)
        with timer("choose strength"):
            steps, chosen_info, kept = choose_strength(ds, ids, sizes, steps, seed, target, split, track)
        params["noise"] = [str(s) for s in steps]
        if resumable and not force and previous.get("noise") != params["noise"]:
            raise ParameterError(f"--target-rate: expected the strength {out} was made with "
                                 f"({'+'.join(map(str, previous.get('noise') or []))}), found {chosen_info['noise']} "
                                 f"for split '{split}'; a strength is chosen per split, so give each split its own "
                                 f"--out (or --force to replace it)")
    with OutputDir(out, "corrupt", params, force) as output:
        params["split"] = split
        labels = LabelDir(out)
        per_image: dict[str, float] = {}
        wrong_total = valid_total = 0
        with timer("corrupt"):
            for image_id in track(ids, len(ids), f"corrupt {split}"):
                gt = ds.load_mask(image_id, sizes[image_id])
                path = labels.path(image_id)
                if output.done(path):
                    noisy = labels.read(image_id, ds.num_classes, gt.shape)
                else:
                    noisy = kept.pop(image_id) if kept is not None and image_id in kept else \
                        corrupt_mask(gt, steps, image_rng(seed, image_id), ds.num_classes)
                    labels.write(image_id, noisy, ds.palette)
                    output.record(path)
                wrong, valid = noise_rate(gt, noisy)
                per_image[image_id] = wrong / valid if valid else 0.0
                wrong_total += wrong
                valid_total += valid
        report = {"command": "corrupt", **params, "images": len(ids),
                  "noise_rate": wrong_total / valid_total if valid_total else 0.0,
                  **({"strength": chosen_info} if chosen_info else {}),
                  "per_image_noise_rate": per_image, "timings": timer.seconds}
        return write_report(out, report)
