"""``noisyseg demo``: the whole chain on a procedural dataset, in about a minute on a CPU.

The chain is a pipeline file, ``noisyseg/pipelines/demo.toml``: corrupt -> train a clean model on
16 exact masks -> predict -> detect (small-loss, θ calibrated on strong) -> correct (crf) -> train
a final model on strong + corrected weak labels, beside the clean model alone and a model trained
on the noisy labels, all three scored on a test split -> report.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from noisyseg.pipeline.common import Track, no_track
from noisyseg.pipeline.run import load_pipeline, run_pipeline
from noisyseg.synthetic import make_dataset

DEMO_PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "demo.toml"
DEMO_SPLITS = {"strong": 16, "weak": 96, "test": 40}


def demo(workdir: str | Path, device: str = "auto", force: bool = False, track: Track = no_track,
         status: Callable[[str], None] = lambda msg: None, on_step=None) -> dict:
    """Writes the dataset (``workdir/shapes``) and the pipeline file (``workdir/pipeline.toml``)
    and runs it in ``workdir``, reusing whatever an earlier run finished (``force``: nothing); returns ``run_pipeline``'s
    result plus ``story``: test mIoU of the three models and the weak labels' quality per stage."""
    work = Path(workdir)
    status("dataset: procedural textured shapes")
    make_dataset(work / "shapes", splits=DEMO_SPLITS)
    shutil.copyfile(DEMO_PIPELINE, work / "pipeline.toml")
    result = run_pipeline(load_pipeline(work / "pipeline.toml", device=device), force=force, track=track,
                          status=status, on_step=on_step)
    q = {(row["stage"], row["split"]): row for row in result["quality"]}
    result["story"] = {"noisy labels": q["noisy", "weak"], "detected": q["cleaned", "weak"],
                       "corrected": q["corrected", "weak"], "clean model (test)": q["clean-test", "test"],
                       "noisy-label model (test)": q["noisy-model-test", "test"],
                       "final model (test)": q["final-test", "test"]}
    return result
