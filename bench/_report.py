"""Figures for the benchmarks: medians, minima and maxima, tables, JSON rounding."""

import statistics
from collections.abc import Sequence
from typing import Any


def stats(values: Sequence[float]) -> dict[str, float]:
    """median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def rounded(value: Any) -> Any:
    """``value`` with every float in it rounded to 6 decimals."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Right-aligned columns under their headers."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
        for row in [headers, *rows]
    ]


def with_stats(
    samples: Sequence[Sequence[str]], columns: Sequence[Sequence[float] | None]
) -> list[list[str]]:
    """``samples`` followed by median, min and max rows of the numeric ``columns``."""
    rows = [list(s) for s in samples]
    for name, pick in (("median", statistics.median), ("min", min), ("max", max)):
        rows.append([name] + [f"{pick(c):.3f}" if c is not None else "" for c in columns[1:]])
    return rows
