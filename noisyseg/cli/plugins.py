"""``noisyseg plugins [NAME]``: every registered strategy and model; one of them in detail."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_cmd(name: Optional[str] = typer.Argument(None, help="A strategy or model to show in detail."),
                    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")):
        """List every strategy (detection, correction, pseudo-labeling, weighting) and model, one
        block per kind: name, one-line description and parameter names. With NAME, that one in
        detail: its provider and each parameter's type, default, range and meaning."""
        from rich.markup import escape

        from noisyseg.cli import ui
        from noisyseg.errors import ParameterError

        entries = _entries()
        if name is not None:
            entries = [e for e in entries if e["name"] == name]
            if not entries:
                known = ", ".join(sorted({e["name"] for e in _entries()}))
                raise ParameterError(f"plugins: expected a registered strategy or model name ({known}), found '{name}'")
        if as_json:
            ui.print_json(entries)
            return
        if name is not None:
            for e in entries:
                _detail(ui, e)
            return
        for kind in dict.fromkeys(e["kind"] for e in entries):
            rows = [[escape(e["name"]), escape(e["summary"]) + _provider(e) + (
                f"\n[dim]-p {escape(', '.join(p['name'] for p in e['params']))}[/dim]" if e["params"] else "")]
                for e in entries if e["kind"] == kind]
            ui.out.print(ui.table(kind, ["name", "description"], rows, justify="left", markup=True))
        ui.out.print("details and parameter ranges: noisyseg plugins NAME")


def _entries() -> list[dict]:
    from noisyseg.plugins import list_models, list_strategies

    return ([_entry(p.spec.kind, p) for p in list_strategies()] +
            [_entry("model", p) for p in list_models()])


def _entry(kind: str, provided) -> dict:
    spec = provided.spec
    return {"kind": kind, "name": spec.name, "plugin": provided.plugin, "version": provided.version,
            "summary": spec.summary, "params": [_param(x) for x in spec.params]}


def _provider(entry: dict) -> str:
    """Names the provider of a third-party entry (built-ins say nothing)."""
    from rich.markup import escape

    return "" if entry["plugin"] == "noisyseg" else f" [dim]({escape(entry['plugin'])} {escape(entry['version'])})[/dim]"


def _detail(ui, entry: dict) -> None:
    ui.out.print(f"{entry['kind']} {entry['name']} ({entry['plugin']} {entry['version']})", markup=False)
    ui.out.print(entry["summary"], markup=False)
    if entry["params"]:
        rows = [[p["name"], p["describe"].split(": ", 1)[1], p["help"]] for p in entry["params"]]
        ui.out.print(ui.table("parameters (-p key=value)", ["name", "type = default", "meaning"], rows,
                              justify="left"))


def _param(p) -> dict:
    return {"name": p.name, "type": p.type.__name__, "default": p.default, "min": p.min, "max": p.max,
            "choices": list(p.choices) if p.choices else None, "special": list(p.special), "help": p.help,
            "describe": p.describe()}
