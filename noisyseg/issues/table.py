"""A table of rows: a pandas DataFrame when pandas is installed, else a small stand-in."""

from __future__ import annotations

from typing import Any, Iterator


def make_table(columns: list[str], rows: list[list[Any]]):
    try:
        import pandas as pd
    except ImportError:
        return Table(columns, rows)
    return pd.DataFrame(rows, columns=columns)


class Table:
    """Rows with named columns; the few DataFrame manners a caller of cleanlab's summary uses."""

    def __init__(self, columns: list[str], rows: list[list[Any]]):
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list[Any]:
        k = self.columns.index(column)
        return [r[k] for r in self.rows]

    def iterrows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, r in enumerate(self.rows):
            yield i, dict(zip(self.columns, r))

    def to_dict(self, orient: str = "records") -> list[dict[str, Any]]:
        if orient != "records":
            raise ValueError("Table.to_dict: only orient='records'")
        return [dict(zip(self.columns, r)) for r in self.rows]

    def __repr__(self) -> str:
        cells = [self.columns] + [[str(v) for v in r] for r in self.rows]
        widths = [max(len(str(row[k])) for row in cells) for k in range(len(self.columns))]
        return "\n".join("  ".join(str(v).rjust(w) for v, w in zip(row, widths)) for row in cells)
