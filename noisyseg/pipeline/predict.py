"""``noisyseg predict``: probs (and features) of a trained run for every image of a split."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from noisyseg.errors import InputError, NoisySegError
from noisyseg.io import Dataset, FeaturesDir, ProbsDir, check_id
from noisyseg.io.dirs import save_npy
from noisyseg.models.cam import class_activation_maps
from noisyseg.pipeline.common import OutputDir, Timer, Track, group_by_size, no_track, select_device, write_report
from noisyseg.train.checkpoint import load_run
from noisyseg.train.supervised import FOLDS_FILE
from noisyseg.train.data import normalise, rescale_image, to_unit
from noisyseg.io.jsonfile import read_json


def _forward(model, config: dict, images: torch.Tensor, ids: list[str], tags, cams: bool,
             flip: bool = False, scales: tuple[float, ...] = (1.0,)) -> dict[str, torch.Tensor]:
    """One model on a batch of ``(B, 3, H, W)`` images in [0, 1]: probs and logits at image size,
    features on the model's grid, CAMs when asked. Test-time augmentation: probs are the mean over
    every scale in ``scales`` (times the run's input scale) and, with ``flip``, over the mirror
    images too (mirrored back), logits their log; features and CAMs are those of scale 1 (or the
    first scale), unmirrored."""
    size = images.shape[-2:]
    base = float(config.get("input_scale", 1.0))
    norm = config.get("normalisation", "imagenet")
    views = [(s, mirror) for s in sorted(scales, key=lambda s: s != 1.0)  # scale 1 first: its features
             for mirror in ((False, True) if flip else (False,))]
    probs, result, logits = 0.0, None, None
    for scale, mirror in views:
        x = normalise(rescale_image(images, base * scale), norm)
        view = model(x.flip(-1) if mirror else x)
        view_logits = view["logits"].float()
        if view_logits.shape[-2:] != size:
            view_logits = F.interpolate(view_logits, size=size, mode="bilinear", align_corners=False)
        probs = probs + torch.softmax(view_logits.flip(-1) if mirror else view_logits, 1) / len(views)
        if result is None:
            result, logits = view, view_logits
    if len(views) > 1:
        logits = probs.clamp_min(1e-12).log()
    out = {"probs": probs, "logits": logits, "features": result["features"]}
    if cams:
        if tags is not None:
            present = torch.zeros_like(result["class_logits"], dtype=torch.bool)
            for k, image_id in enumerate(ids):
                present[k, tags.get(image_id, [])] = True
        else:
            present = torch.sigmoid(result["class_logits"].float()) > 0.5
        out["cams"] = class_activation_maps(result["stage4"], model.class_head.weight, present)
    return out


def _combine(outs: dict[int, dict[str, torch.Tensor]], ids: list[str], held: dict[str, int],
             rest: list[int]) -> dict[str, torch.Tensor]:
    """The outputs of a fold set's models (model index -> outputs) -> one set: an image held out by
    fold k takes model k's outputs; any other image the mean of the ``rest`` models' probs (logits =
    their log; the folds, or the full model alone) and the first of them's features and CAMs."""
    if len(outs) == 1:
        return next(iter(outs.values()))
    merged = None
    for k, image_id in enumerate(ids):
        own = [held[image_id]] if image_id in held else rest
        if len(own) == 1:
            one = {name: value[k] for name, value in outs[own[0]].items()}
        else:
            probs = torch.stack([outs[m]["probs"][k] for m in own]).mean(0)
            one = {"probs": probs, "logits": probs.clamp_min(1e-12).log()}
            one |= {name: outs[own[0]][name][k] for name in ("features", "cams") if name in outs[own[0]]}
        if merged is None:
            merged = {name: torch.empty((len(ids), *value.shape), dtype=value.dtype, device=value.device)
                      for name, value in one.items()}
        for name in merged:
            merged[name][k] = one[name]
    return merged


def _read_folds(path: Path) -> dict[str, list[str]]:
    """folds.json's ``held_out``: {fold dir name: the ids that fold left out}."""
    expected = "a fold index written by 'noisyseg train --folds'"
    index = read_json(path, expected)
    held_out = index.get("held_out") if isinstance(index, dict) else None
    if not isinstance(held_out, dict) or not held_out or not all(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in held_out.values()):
        raise InputError(path, f"{expected} ('held_out': {{fold: [ids]}})", repr(held_out)[:60])
    for name in held_out:
        check_id(name, path)
    return held_out


def load_models(run: str | Path, device) -> tuple[list[tuple[torch.nn.Module, dict]], dict[str, int], list[int]]:
    """The model(s) of a run directory, or of a fold set made by ``noisyseg train --folds``; for a
    fold set also which model each held-out image takes, and the models every other image takes
    (the folds, or the full model of ``--full``)."""
    index_path = Path(run) / FOLDS_FILE
    if not index_path.is_file():
        return [load_run(run, device)], {}, [0]
    held_out = _read_folds(index_path)
    names = list(held_out)
    held = {image_id: k for k, name in enumerate(names) for image_id in held_out[name]}
    full = read_json(index_path, "a fold index written by 'noisyseg train --folds'").get("full")
    if full is not None:
        check_id(full, index_path)
        names.append(full)
    rest = [len(names) - 1] if full is not None else list(range(len(names)))
    return [load_run(Path(run) / name, device) for name in names], held, rest


def predict(run: str | Path, dataset: str | Path, split: str, out: str | Path, features: bool = False,
            device: str = "auto", batch_size: int = 4, force: bool = False, track: Track = no_track,
            cams: bool = False, logits: bool = False, flip: bool = False,
            scales: tuple[float, ...] = (1.0,)) -> dict:
    """Writes ``out/probs/<id>.npy`` float16 ``(C, H, W)`` and, with ``features``, ``out/features/<id>.npy``
    float16 ``(D, h, w)`` at the model's stride. With ``cams``, ``out/cams/<id>.npy`` float16 ``(C, h, w)``
    CAMs of the classification head over ``stage4`` (max-normalised per class, zero for classes absent
    from tags.json, or without it for classes whose sigmoid(class_logits) <= 0.5); with ``logits``,
    ``out/logits/<id>.npy`` float16 ``(C, H, W)``. A run trained with ``input_scale`` s sees its
    inputs resized by s (and normalised as in training); logits are upsampled back to image size,
    features stay at the model's grid (stride ``feature_stride / s`` in image pixels). ``run`` may
    be a fold set (``noisyseg train --folds K``): see :func:`_combine`. ``flip`` and
    ``scales`` average each image's probs over its mirror image and over rescaled copies
    (test-time augmentation; each view costs one more forward pass). A rerun skips
    images already written."""
    ds = Dataset(dataset)
    dev = select_device(device)
    models, held, rest = load_models(run, dev)
    model, config = models[0]
    if config["num_classes"] != ds.num_classes:
        raise NoisySegError(f"{run}: the model predicts {config['num_classes']} classes, "
                            f"but {dataset} has {ds.num_classes}")
    ids = ds.ids(split)
    params = {"run": str(Path(run).resolve()), "dataset": str(Path(dataset).resolve()), "features": features}
    extra = [name for name, on in (("cams", cams), ("logits", logits)) if on]
    if cams and getattr(model, "class_head", None) is None:
        raise NoisySegError(f"{run}: --cams needs a model with a classification head, found none")
    params.update({name: True for name in extra})  # absent when off, so older runs still resume
    scales = tuple(float(v) for v in scales)
    if not scales or min(scales) <= 0:
        raise NoisySegError(f"predict: scales must be positive numbers, got {scales}")
    if flip:
        params["flip"] = True
    if scales != (1.0,):
        params["scales"] = list(scales)
    sizes = {i: ds.image_size(i) for i in ids}  # every image header is read before anything is written
    with OutputDir(out, "predict", params, force) as output:
        params["split"] = split
        probs_dir, feat_dir = ProbsDir(Path(out) / "probs"), FeaturesDir(Path(out) / "features")

        def finished(image_id: str) -> bool:
            return output.done(probs_dir.path(image_id)) and (not features or output.done(feat_dir.path(image_id))) \
                and all(output.done(Path(out) / name / f"{image_id}.npy") for name in extra)

        todo = [i for i in ids if not finished(i)]
        timer = Timer()
        with torch.inference_mode(), timer("predict"):
            batches = group_by_size(todo, sizes, batch_size)
            for batch in track(batches, len(batches), f"predict {split}"):
                images = torch.stack([to_unit(ds.load_image(i)) for i in batch]).to(dev)
                needed = sorted({held[i] for i in batch if i in held} | (set(rest) if any(i not in held for i in batch) else set()))
                result = _combine({k: _forward(*models[k], images, batch, ds.tags, cams, flip, scales) for k in needed},
                                  batch, held, rest)
                arrays = {name: result[name].half().contiguous().cpu().numpy() for name in ["probs", *extra] + (["features"] if features else [])}
                for k, image_id in enumerate(batch):
                    files = [probs_dir.write(image_id, arrays["probs"][k])]
                    if features:
                        files.append(feat_dir.write(image_id, arrays["features"][k]))
                    for name in extra:
                        files.append(save_npy(Path(out) / name / f"{image_id}.npy", arrays[name][k]))
                    output.record(*files)
        report = {"command": "predict", **params, "images": len(ids), "skipped": len(ids) - len(todo),
                  "models": len(models), "out_of_fold": sum(i in held for i in ids),
                  "device": str(dev), "feature_dim": int(getattr(model, "feature_dim", 0)),
                  "feature_stride": int(getattr(model, "feature_stride", 0)), "timings": timer.seconds}
        return write_report(out, report)
