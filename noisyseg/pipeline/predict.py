"""``noisyseg predict``: probs (and features) of a trained run for every image of a split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from noisyseg.errors import NoisySegError
from noisyseg.io import Dataset, FeaturesDir, ProbsDir
from noisyseg.pipeline.common import OutputDir, Timer, Track, group_by_size, no_track, select_device, write_report
from noisyseg.train.checkpoint import load_run
from noisyseg.train.data import normalise


def predict(run: str | Path, dataset: str | Path, split: str, out: str | Path, features: bool = False,
            device: str = "auto", batch_size: int = 4, force: bool = False, track: Track = no_track) -> dict:
    """Writes ``out/probs/<id>.npy`` float16 ``(C, H, W)`` and, with ``features``, ``out/features/<id>.npy``
    float16 ``(D, h, w)`` at the model's stride. A rerun skips images already written."""
    ds = Dataset(dataset)
    dev = select_device(device)
    model, config = load_run(run, dev)
    if config["num_classes"] != ds.num_classes:
        raise NoisySegError(f"{run}: the model predicts {config['num_classes']} classes, "
                            f"but {dataset} has {ds.num_classes}")
    ids = ds.ids(split)
    params = {"run": str(Path(run).resolve()), "dataset": str(Path(dataset).resolve()), "features": features}
    output = OutputDir(out, "predict", params, force)
    params["split"] = split
    probs_dir, feat_dir = ProbsDir(Path(out) / "probs"), FeaturesDir(Path(out) / "features")

    def finished(image_id: str) -> bool:
        return output.done(probs_dir.path(image_id)) and (not features or output.done(feat_dir.path(image_id)))

    todo = [i for i in ids if not finished(i)]
    sizes = {i: ds.image_size(i) for i in todo}
    timer = Timer()
    with torch.inference_mode(), timer("predict"):
        batches = group_by_size(todo, sizes, batch_size)
        for batch in track(batches, len(batches), f"predict {split}"):
            images = torch.stack([normalise(ds.load_image(i)) for i in batch]).to(dev)
            result = model(images)
            probs = torch.softmax(result["logits"].float(), 1).half().cpu().numpy()
            feats = result["features"].half().cpu().numpy() if features else None
            for k, image_id in enumerate(batch):
                probs_dir.write(image_id, probs[k])
                if features:
                    feat_dir.write(image_id, feats[k])
    report = {"command": "predict", **params, "images": len(ids), "skipped": len(ids) - len(todo),
              "device": str(dev), "feature_dim": int(getattr(model, "feature_dim", 0)),
              "feature_stride": int(getattr(model, "feature_stride", 0)), "timings": timer.seconds}
    return write_report(out, report)
