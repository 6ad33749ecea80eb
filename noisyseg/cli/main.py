"""``noisyseg``: detect, correct and learn from noisy segmentation masks.

Errors a user can fix print one line on stderr and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from noisyseg.cli import (correct, corrupt, demo, detect, evaluate, export, import_data, plugins, predict, pseudo_label,
                          report, train, weight)

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
               demo):
    module.register(app)


def main() -> None:
    """Console-script entry point: runs the app and turns NoisySegError into one line + exit 2."""
    from noisyseg.errors import NoisySegError

    debug = "--debug" in sys.argv or os.environ.get("NOISYSEG_DEBUG") == "1"
    try:
        app(standalone_mode=False)
    except NoisySegError as e:
        if debug:
            raise
        from noisyseg.cli.ui import err

        err.print(f"[bold red]error:[/] {_escape(str(e))}", soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:
        # Usage errors (typer.BadParameter and the rest of click's ClickException family, which
        # typer may vendor): they print themselves and carry their exit code (2).
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        raise


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    main()
