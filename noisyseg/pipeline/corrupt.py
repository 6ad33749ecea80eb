"""``noisyseg corrupt``: noisy label dirs from ground truth, with the true noise rate recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisyseg.constants import IGNORE_INDEX
from noisyseg.io import Dataset, LabelDir
from noisyseg.noise import DEFAULT_NOISE, corrupt_mask, image_rng, parse_noise_spec
from noisyseg.pipeline.common import OutputDir, Timer, Track, check_seed, no_track, write_report


def noise_rate(gt: np.ndarray, noisy: np.ndarray) -> tuple[int, int]:
    """(wrong pixels, pixels with a GT label): a pixel is wrong when its noisy label differs from GT."""
    valid = gt != IGNORE_INDEX
    return int(((noisy != gt) & valid).sum()), int(valid.sum())


def corrupt(dataset: str | Path, split: str, out: str | Path, seed: int = 0, noise: str = DEFAULT_NOISE,
            force: bool = False, track: Track = no_track) -> dict:
    """Corrupts the GT masks of ``split`` into the label dir ``out``; returns the report.

    Deterministic per (seed, image id). A rerun skips images already written.
    """
    ds = Dataset(dataset)
    steps = parse_noise_spec(noise)
    check_seed(seed)
    ids = ds.ids(split)
    sizes = {i: ds.image_size(i) for i in ids}  # every image header is read before anything is written
    params = {"dataset": str(Path(dataset).resolve()), "seed": seed, "noise": [str(s) for s in steps]}
    with OutputDir(out, "corrupt", params, force) as output:
        params["split"] = split
        labels = LabelDir(out)
        timer = Timer()
        per_image: dict[str, float] = {}
        wrong_total = valid_total = 0
        with timer("corrupt"):
            for image_id in track(ids, len(ids), f"corrupt {split}"):
                gt = ds.load_mask(image_id, sizes[image_id])
                path = labels.path(image_id)
                if output.done(path):
                    noisy = labels.read(image_id, ds.num_classes, gt.shape)
                else:
                    noisy = corrupt_mask(gt, steps, image_rng(seed, image_id), ds.num_classes)
                    labels.write(image_id, noisy, ds.palette)
                    output.record(path)
                wrong, valid = noise_rate(gt, noisy)
                per_image[image_id] = wrong / valid if valid else 0.0
                wrong_total += wrong
                valid_total += valid
        report = {"command": "corrupt", **params, "images": len(ids),
                  "noise_rate": wrong_total / valid_total if valid_total else 0.0,
                  "per_image_noise_rate": per_image, "timings": timer.seconds}
        return write_report(out, report)
