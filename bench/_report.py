"""Figures for the benchmarks: medians, minima and maxima, tables, JSON rounding."""

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from local.stack import interrupt_on_sigterm

ResultsT = TypeVar("ResultsT")


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


def run_benchmark(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Callable[[str], None]], ResultsT],
    as_json: Callable[[ResultsT], str],
    report: Callable[[ResultsT], str],
) -> int:
    """Run one benchmark as a command: progress on stderr, its figures (or JSON) on stdout.

    0 when every deployment did what it should; 1 when one did not; 130 when interrupted.
    """
    interrupt_on_sigterm()

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    try:
        results = run(args, say)
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    except (RuntimeError, TimeoutError, OSError) as err:
        say(f"FAILED: {err}")
        return 1
    print(as_json(results) if args.json else report(results), flush=True)
    return 0
