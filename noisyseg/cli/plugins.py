"""``noisyseg plugins``: every registered strategy and model, with its provider and parameters."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
        """List every strategy (detection, correction, pseudo-labeling, weighting) and model,
        with the plugin and version that provides it, a one-line description and its parameters."""
        from noisyseg.cli import ui
        from noisyseg.plugins import list_models, list_strategies

        entries = [{"kind": p.spec.kind, "name": p.spec.name, "plugin": p.plugin, "version": p.version,
                    "summary": p.spec.summary, "params": [_param(x) for x in p.spec.params]} for p in list_strategies()]
        entries += [{"kind": "model", "name": p.spec.name, "plugin": p.plugin, "version": p.version,
                     "summary": p.spec.summary, "params": [_param(x) for x in p.spec.params]} for p in list_models()]
        if as_json:
            ui.print_json(entries)
            return
        rows = [[e["kind"], e["name"], f"{e['plugin']} {e['version']}", e["summary"]] for e in entries]
        ui.out.print(ui.table("strategies and models", ["kind", "name", "plugin", "description"], rows, justify="left"))
        params = [[f"{e['kind']}/{e['name']}", x["describe"], x["help"]] for e in entries for x in e["params"]]
        ui.out.print(ui.table("parameters (-p key=value)", ["strategy", "parameter", "meaning"], params, justify="left"))


def _param(p) -> dict:
    return {"name": p.name, "type": p.type.__name__, "default": p.default, "min": p.min, "max": p.max,
            "choices": list(p.choices) if p.choices else None, "special": list(p.special), "help": p.help,
            "describe": p.describe()}
