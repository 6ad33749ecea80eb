"""The command line: one Typer module per command, joined in ``noisyseg.cli.main``."""
