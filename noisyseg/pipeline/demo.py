"""``noisyseg demo``: the whole detect chain on a procedural dataset, in a few minutes on a CPU.

make data -> corrupt (strong, weak) -> train a clean model on strong GT -> predict -> detect
small-loss with θ calibrated on strong -> evaluate each stage on weak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from noisyseg.pipeline.common import Track, no_track
from noisyseg.pipeline.corrupt import corrupt
from noisyseg.pipeline.detect import detect
from noisyseg.pipeline.evaluate import evaluate
from noisyseg.pipeline.predict import predict
from noisyseg.synthetic import make_dataset
from noisyseg.train.supervised import TrainConfig, train

DEMO_MODEL = {"width": "16", "depth": "1,1,1,1", "feature_dim": "64"}


def demo(workdir: str | Path, epochs: int = 25, device: str = "auto", track: Track = no_track,
         status: Callable[[str], None] = lambda msg: None, on_step=None) -> dict:
    """Runs the chain in ``workdir`` (reusing whatever an earlier run finished); returns the stage table."""
    work = Path(workdir)
    status("dataset: procedural textured shapes")
    data = make_dataset(work / "data")
    for split in ("strong", "weak"):
        status(f"corrupt: noisy labels for {split}")
        corrupt(data, split, work / "noisy", seed=0, track=track)
    status("train: clean model on the strong split's ground truth")
    cfg = TrainConfig(dataset=str(data), split="strong", out=str(work / "runs" / "clean"), model="deeplabv3plus",
                      model_params=DEMO_MODEL,
                      epochs=epochs, batch_size=8, lr=0.02, crop_size=96, device=device)
    trained = train(cfg, on_step=on_step)
    for split in ("strong", "weak"):
        status(f"predict: {split}")
        predict(cfg.out, data, split, work / "preds", features=True, device=device, track=track)
    status("detect: small-loss, θ calibrated on strong")
    detected = detect(data, "weak", work / "noisy", work / "preds" / "probs", "small-loss", work / "cleaned",
                      params={"theta": "auto", "calibrate_split": "strong", "target_precision": 0.97},
                      scores=True, device=device, track=track)
    stages = []
    for name, kwargs in (("noisy labels", {"labels": work / "noisy"}),
                         ("clean model (argmax)", {"probs": work / "preds" / "probs"}),
                         ("after detect (small-loss)", {"labels": work / "cleaned"})):
        result = evaluate(data, split="weak", **kwargs)
        q = result.get("labels") or result["probs"]
        stages.append({"stage": name, "miou": q["miou"], "precision": q["precision"], "coverage": q["coverage"]})
    return {"workdir": str(work), "stages": stages, "theta": detected["fitted"]["theta"],
            "detection_quality": detected["detection_quality"], "train_seconds": trained["timings"].get("train", 0.0)}
