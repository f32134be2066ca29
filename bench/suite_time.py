"""How long ``make test`` takes: formatting, lint, types and every test, as CI runs them.

    python -m bench.suite_time [--rounds N] [--json]

Runs ``make test`` once in the repository's root, with its output in
.local/logs/bench-make-test.log, and reports its wall time (from just before it starts to its
exit) and pytest's own summary line ("N passed, M skipped in X s"). One run takes about three
minutes, so ``--rounds`` is accepted, for ``make bench BENCH_ARGS=…``, and ignored: the output
says so. The virtualenv must exist (``make bench`` makes it first), or the figure would include
installing it. A ``make test`` that fails fails the benchmark, with its figures and the log's
last lines; one still running after 30 minutes is stopped, with everything it started.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench._report import arguments, json_text, run_benchmark
from local.processes import ROOT, log_path, stop

ROUNDS = 1
"""Runs of ``make test`` whatever ``--rounds`` says: one takes minutes."""
LOG = log_path("bench-make-test")
TAIL = 30
"""Lines of the log shown when ``make test`` fails."""
TIMEOUT = 30 * 60.0
"""Seconds before a hung ``make test`` is stopped and the benchmark fails: ten times a normal run."""
SUMMARY = re.compile(
    r"^=*\s*(?P<line>\d+ \w+\b.*? in (?P<seconds>[\d.]+)s\b.*?)\s*=*$", re.MULTILINE
)
"""pytest's last line: ``==== 371 passed, 2 skipped in 146.12s (0:02:26) ====``."""
COUNTS = re.compile(r"(?P<count>\d+) (?P<what>[a-z]+)")


@dataclass
class Results:
    """One run of ``make test``."""

    rounds_asked: int
    rounds_run: int
    cpus: int | None
    wall: float
    """Seconds from just before ``make test`` started to its exit: install check, lint, tests."""
    exit_code: int
    pytest_line: str | None
    """pytest's summary line, without its ``=`` padding; None when there is none."""
    pytest_seconds: float | None
    """The seconds pytest itself reports in that line."""
    counts: dict[str, int]
    """passed, failed, skipped, … as that line counts them."""
    log: str


def pytest_summary(output: str) -> tuple[str | None, float | None, dict[str, int]]:
    """pytest's last summary line in ``output``, its seconds, and its counts."""
    found = list(SUMMARY.finditer(output))
    if not found:
        return None, None, {}
    last = found[-1]
    line = last.group("line")
    counts = {m.group("what"): int(m.group("count")) for m in COUNTS.finditer(line)}
    return line, float(last.group("seconds")), counts


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Run ``make test`` once; fails (RuntimeError) when it does."""
    if args.rounds != ROUNDS:
        say(f"--rounds {args.rounds} ignored: make test runs once (about three minutes)")
    LOG.parent.mkdir(parents=True, exist_ok=True)
    say(f"make test in {ROOT} (output in {LOG})")
    with open(LOG, "wb") as log:
        started = time.perf_counter()
        # Its own process group, so that stopping it (timeout, Ctrl-C) also stops pytest and the
        # servers the tests started, not make alone.
        process = subprocess.Popen(
            ["make", "test"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"make test still running after {TIMEOUT:.0f}s, stopped; see {LOG}"
            ) from None
        finally:
            stop(process)
        wall = time.perf_counter() - started
    output = LOG.read_text(errors="replace")
    line, seconds, counts = pytest_summary(output)
    results = Results(
        rounds_asked=args.rounds,
        rounds_run=ROUNDS,
        cpus=os.cpu_count(),
        wall=wall,
        exit_code=returncode,
        pytest_line=line,
        pytest_seconds=seconds,
        counts=counts,
        log=str(LOG),
    )
    if returncode != 0:
        tail = "\n".join(output.splitlines()[-TAIL:])
        raise RuntimeError(
            f"make test exited with {returncode} after {wall:.1f}s"
            f" (pytest: {line or 'no summary line'}); the end of {LOG}:\n{tail}"
        )
    return results


def as_json(results: Results) -> str:
    """One JSON document: the run."""
    return json_text(results)


def report(results: Results) -> str:
    """A few lines for a terminal."""
    r = results
    minutes, seconds = divmod(r.wall, 60)
    pytest = f"pytest: {r.pytest_line}" if r.pytest_line else "pytest printed no summary line"
    return "\n".join(
        [
            f"test-suite benchmark: make test, {r.rounds_run} run (one is enough: it takes"
            f" minutes; --rounds {r.rounds_asked} ignored), {r.cpus} CPUs",
            f"wall time: {r.wall:.1f} s ({minutes:.0f} min {seconds:.0f} s): the install check,"
            " ruff format --check, ruff check, mypy, then pytest",
            f"{pytest}" + (f" (pytest's own {r.pytest_seconds:.1f} s)" if r.pytest_seconds else ""),
            f"output: {r.log}",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments(
        "python -m bench.suite_time",
        "The wall time of `make test`.",
        ROUNDS,
        rounds_help="accepted and ignored: make test runs once",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when ``make test`` passed."""
    return run_benchmark(parse_args(argv), run, as_json, report)


if __name__ == "__main__":
    sys.exit(main())
