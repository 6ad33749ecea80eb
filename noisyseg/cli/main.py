"""``noisyseg``: detect, correct and learn from noisy segmentation masks.

Errors a user can fix print one line on stderr and exit 2; ``--debug`` shows the traceback. An
interrupted command (Ctrl-C) exits 130, like any program killed by SIGINT.
"""

from __future__ import annotations

import os
import sys
import warnings

import typer

from noisyseg.cli import (correct, corrupt, demo, detect, evaluate, export, import_data, plugins, predict, pseudo_label,
                          report, run, train, weight)

app = typer.Typer(
    name="noisyseg",
    help="Detect, correct and learn from noisy semantic-segmentation masks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (or set NOISYSEG_DEBUG=1).")):
    # main() reads --debug itself, before parsing, so that every error honours it.
    pass


for module in (plugins, import_data, export, corrupt, train, predict, detect, correct, pseudo_label, weight, evaluate, report,
               run, demo):
    module.register(app)


def main() -> None:
    """Console-script entry point: runs the app; a NoisySegError or a usage error is one line on
    stderr and exit 2, an interrupt (Ctrl-C) exit 130."""
    debug = "--debug" in sys.argv or os.environ.get("NOISYSEG_DEBUG") == "1"
    formatwarning = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _one_line_warning
    try:
        _run(debug)
    finally:
        warnings.formatwarning = formatwarning


def _run(debug: bool) -> None:
    from noisyseg.errors import NoisySegError

    try:
        code = app(standalone_mode=False)  # typer returns the code of an Exit, 130 for KeyboardInterrupt
    except NoisySegError as e:
        if debug:
            raise
        _error(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        code = 130
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        code = 1
    except Exception as e:
        # Usage errors (typer.BadParameter and the rest of click's ClickException family, which
        # typer may vendor) carry their exit code (2); shown as one line, with where to find help.
        if not (callable(getattr(e, "format_message", None)) and isinstance(getattr(e, "exit_code", None), int)):
            raise
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _error(" ".join(e.format_message().split()) + hint)
        sys.exit(e.exit_code)
    if code == 130:
        _error("interrupted; rerun the same command to resume")
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


def _error(message: str) -> None:
    from noisyseg.cli.ui import err

    err.print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one ``warning:`` line (a plugin skipped, a library's complaint), no source line."""
    return "warning: " + " ".join(str(message).split()) + "\n"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    main()
