"""Rich output shared by the commands: data to stdout, status and progress to stderr."""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

T = TypeVar("T")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def progress(*extra_columns) -> Progress:
    """A Rich progress bar on stderr, shown only when stderr is a terminal: in a log file, an error
    stays the one line it is, with no bar state before it."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), *extra_columns)
    return Progress(*columns, console=err, transient=False, disable=not err.is_terminal)


def track(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    """A progress bar on stderr around ``items``."""
    with progress() as bar:
        task = bar.add_task(escape(description), total=total or None)
        for item in items:
            yield item
            bar.advance(task)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return escape(str(value))


def table(title: str, columns: list[str], rows: list[list[Any]], justify: str = "right",
          markup: bool = False) -> Table:
    """A table whose first column is left-aligned and the others ``justify``-aligned. Cells are
    shown as text; with ``markup`` their strings are Rich markup (the caller escapes any text)."""
    t = Table(title=escape(title), title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(escape(c), justify="left" if i == 0 else justify)
    for row in rows:
        t.add_row(*(v if markup and isinstance(v, str) else fmt(v) for v in row))
    return t


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def quality_rows(report: dict, keys: list[tuple[str, str]]) -> list[list[Any]]:
    """Rows (name, miou, pixel accuracy / precision, coverage) for label-quality dicts in a report."""
    rows = []
    for key, name in keys:
        q = report.get(key)
        if q:
            rows.append([name, q["miou"], q["precision"], q["coverage"]])
    return rows
