"""Plain-text tables of results, the one formatter the notebooks print with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_table"]


def format_table(rows: Sequence[Mapping[str, Any]], digits: int = 3) -> str:
    """A plain-text table of dict rows: one column per key of the first row, floats rounded
    to ``digits`` decimals, the first column left-aligned and the others right-aligned.

    Returns ``""`` for no rows.
    """
    if not rows:
        return ""
    cols = list(rows[0])

    def fmt(v: Any) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True)))

    return "\n".join([line(cols), *(line(row) for row in cells)])
