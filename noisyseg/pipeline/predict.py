"""``noisyseg predict``: probs (and features) of a trained run for every image of a split."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from noisyseg.errors import NoisySegError
from noisyseg.io import Dataset, FeaturesDir, ProbsDir
from noisyseg.io.dirs import save_npy
from noisyseg.models.sgc import class_activation_maps
from noisyseg.pipeline.common import OutputDir, Timer, Track, group_by_size, no_track, select_device, write_report
from noisyseg.train.checkpoint import load_run
from noisyseg.train.data import normalise, rescale_image, to_unit


def predict(run: str | Path, dataset: str | Path, split: str, out: str | Path, features: bool = False,
            device: str = "auto", batch_size: int = 4, force: bool = False, track: Track = no_track,
            cams: bool = False, logits: bool = False) -> dict:
    """Writes ``out/probs/<id>.npy`` float16 ``(C, H, W)`` and, with ``features``, ``out/features/<id>.npy``
    float16 ``(D, h, w)`` at the model's stride. With ``cams``, ``out/cams/<id>.npy`` float16 ``(C, h, w)``
    CAMs of the classification head over ``stage4`` (max-normalised per class, zero for classes absent
    from tags.json, or without it for classes whose sigmoid(class_logits) <= 0.5); with ``logits``,
    ``out/logits/<id>.npy`` float16 ``(C, H, W)``. A run trained with ``input_scale`` s sees its
    inputs resized by s (and normalised as in training); logits are upsampled back to image size, features stay at the model's grid
    (stride ``feature_stride / s`` in image pixels). A rerun skips images already written."""
    ds = Dataset(dataset)
    dev = select_device(device)
    model, config = load_run(run, dev)
    if config["num_classes"] != ds.num_classes:
        raise NoisySegError(f"{run}: the model predicts {config['num_classes']} classes, "
                            f"but {dataset} has {ds.num_classes}")
    ids = ds.ids(split)
    scale = float(config.get("input_scale", 1.0))
    norm = config.get("normalisation", "imagenet")
    params = {"run": str(Path(run).resolve()), "dataset": str(Path(dataset).resolve()), "features": features}
    extra = [name for name, on in (("cams", cams), ("logits", logits)) if on]
    if cams and getattr(model, "class_head", None) is None:
        raise NoisySegError(f"{run}: --cams needs a model with a classification head, found none")
    params.update({name: True for name in extra})  # absent when off, so older runs still resume
    output = OutputDir(out, "predict", params, force)
    params["split"] = split
    probs_dir, feat_dir = ProbsDir(Path(out) / "probs"), FeaturesDir(Path(out) / "features")

    def finished(image_id: str) -> bool:
        return output.done(probs_dir.path(image_id)) and (not features or output.done(feat_dir.path(image_id))) \
            and all(output.done(Path(out) / name / f"{image_id}.npy") for name in extra)

    todo = [i for i in ids if not finished(i)]
    sizes = {i: ds.image_size(i) for i in todo}
    timer = Timer()
    with torch.inference_mode(), timer("predict"):
        batches = group_by_size(todo, sizes, batch_size)
        for batch in track(batches, len(batches), f"predict {split}"):
            images = torch.stack([to_unit(ds.load_image(i)) for i in batch])
            size = images.shape[-2:]
            images = normalise(rescale_image(images, scale), norm).to(dev)
            result = model(images)
            if scale != 1.0:
                result["logits"] = F.interpolate(result["logits"], size=size, mode="bilinear", align_corners=False)
            probs = torch.softmax(result["logits"].float(), 1).half().cpu().numpy()
            feats = result["features"].half().cpu().numpy() if features else None
            maps = {}
            if cams:
                if ds.tags is not None:
                    present = torch.zeros_like(result["class_logits"], dtype=torch.bool)
                    for k, image_id in enumerate(batch):
                        present[k, ds.tags.get(image_id, [])] = True
                else:
                    present = torch.sigmoid(result["class_logits"].float()) > 0.5
                maps["cams"] = class_activation_maps(result["stage4"], model.class_head.weight, present)
            if logits:
                maps["logits"] = result["logits"]
            maps = {name: m.half().cpu().numpy() for name, m in maps.items()}
            for k, image_id in enumerate(batch):
                probs_dir.write(image_id, probs[k])
                if features:
                    feat_dir.write(image_id, feats[k])
                for name, m in maps.items():
                    save_npy(Path(out) / name / f"{image_id}.npy", m[k])
    report = {"command": "predict", **params, "images": len(ids), "skipped": len(ids) - len(todo),
              "device": str(dev), "feature_dim": int(getattr(model, "feature_dim", 0)),
              "feature_stride": int(getattr(model, "feature_stride", 0)), "timings": timer.seconds}
    return write_report(out, report)
