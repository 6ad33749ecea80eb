"""``noisyseg detect``: flag the pixels of a noisy label dir not to trust."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer


def register(app: typer.Typer) -> None:
    @app.command("detect")
    def detect_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory."),
        split: str = typer.Option(..., "--split", help="Split to clean."),
        labels: Path = typer.Option(..., "--labels", help="Noisy label dir."),
        probs: Path = typer.Option(..., "--probs", help="Probs dir (from 'noisyseg predict')."),
        strategy: str = typer.Option(..., "--strategy", help="Detection strategy (see 'noisyseg plugins')."),
        param: List[str] = typer.Option([], "-p", "--param", help="Strategy parameter key=value (repeatable)."),
        out: Path = typer.Option(..., "--out", help="Label dir to write; flagged pixels become 255."),
        scores: bool = typer.Option(False, "--scores", help="Also write scores/<id>.npy float16 noise scores."),
        spare_blind: float = typer.Option(0.0, "--spare-blind", min=0.0, max=1.0,
                                          help="Never flag the pixels of a class the model's argmax agrees with on fewer "
                                               "than this share of its noisy pixels over the split: a class the model "
                                               "barely predicts cannot be judged by it (0 = off; e.g. 0.25)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per batch."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Overwrite instead of resuming."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Flag untrusted pixels of noisy labels with a detection strategy; flagged pixels become 255.
        With ground truth present, also report precision/recall/F1/AUROC of the flags and label quality."""
        from noisyseg.cli import ui
        from noisyseg.pipeline.detect import detect
        from noisyseg.params import parse_assignments

        report = detect(dataset, split, labels, probs, strategy, out, params=parse_assignments(param), scores=scores,
                        device=device, batch_size=batch_size, force=force, track=ui.track, spare_blind=spare_blind)
        if as_json:
            ui.print_json(report)
            return
        fitted = report["fitted"]
        if "curve" in fitted:
            bound = fitted.get("confidence", 0) > 0
            ui.out.print(ui.table(f"θ calibration on '{fitted['calibrate_split']}' (target precision {fitted['target_precision']}"
                                  + (f" at {fitted['confidence']:g} confidence over images)" if bound else ")"),
                                  ["θ", "kept precision", "coverage"] + (["precision bound"] if bound else []),
                                  [[c["theta"], c["precision"], c["coverage"]] + ([c["precision_bound"]] if bound else [])
                                   for c in fitted["curve"]]))
        if "spare_blind" in fitted:
            spared = fitted["spare_blind"]["spared_classes"]
            ui.out.print(f"spared (model agrees on < {spare_blind:g} of their pixels): {', '.join(spared) or 'none'}")
        ui.out.print(ui.table(f"detect {split} ({strategy}) -> {out}", ["images", "flagged share", "seconds"],
                              [[report["images"], report["flagged_share"], report["timings"].get("detect", 0.0)]]))
        if "detection_quality" in report:
            q = report["detection_quality"]
            ui.out.print(ui.table("detection vs true noise", ["precision", "recall", "F1", "AUROC", "AP", "noise rate"],
                                  [[q["precision"], q["recall"], q["f1"], q.get("auroc", float("nan")),
                                    q.get("average_precision", float("nan")), q["noise_rate"]]]))
            rows = ui.quality_rows(report, [("noisy_label_quality", "noisy labels"), ("cleaned_label_quality", "cleaned labels")])
            ui.out.print(ui.table("label quality vs ground truth", ["labels", "mIoU", "precision", "coverage"], rows))
