"""``noisyseg corrupt``: make noisy labels from ground truth with named noise models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from noisyseg.noise.spec import DEFAULT_NOISE


def register(app: typer.Typer) -> None:
    @app.command("corrupt")
    def corrupt_cmd(
        dataset: Path = typer.Argument(..., help="Dataset directory (dataset.json, images/, masks/, splits/)."),
        split: str = typer.Option(..., "--split", help="Split whose ground-truth masks are corrupted."),
        out: Path = typer.Option(..., "--out", help="Label dir to write (<id>.png)."),
        seed: int = typer.Option(0, "--seed", help="Seed; results depend only on (seed, image id)."),
        noise: str = typer.Option(DEFAULT_NOISE, "--noise", help="Noise spec: model[:key=value,...] steps joined by '+'. "
                                  "Models: boundary (k, p), drop (p, background, max_share), swap (p, max_share), "
                                  "cam (scale, sigma, shrink); every step takes rate=chance it runs on an image."),
        target_rate: Optional[float] = typer.Option(None, "--target-rate",
                                                    help="Scale the --noise mix's strength until the split's wrong-pixel "
                                                    "rate is within 0.01 of this one (0 to 1, e.g. 0.2); report.json "
                                                    "records the scale and spec chosen."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing output instead of resuming it."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ):
        """Corrupt ground-truth masks the way pseudo-masks go wrong; report.json records the true noise rate.

        With --target-rate R the mix is made stronger or weaker until R of the pixels are wrong.
        """
        from noisyseg.cli import ui
        from noisyseg.pipeline.corrupt import corrupt

        report = corrupt(dataset, split, out, seed=seed, noise=noise, target_rate=target_rate, force=force,
                         track=ui.track)
        if as_json:
            ui.print_json({k: v for k, v in report.items() if k != "per_image_noise_rate"})
            return
        if "strength" in report:
            chosen = report["strength"]
            ui.out.print(f"target rate {chosen['target']:g}: scale {chosen['scale']:g} after {chosen['iterations']} "
                         f"measurements -> --noise {chosen['noise']}")
        rates = list(report["per_image_noise_rate"].values())
        ui.out.print(ui.table(f"corrupt {split} -> {out}", ["images", "noise rate", "min image", "max image"],
                              [[report["images"], report["noise_rate"], min(rates, default=0), max(rates, default=0)]]))
