"""How long ``make test`` takes: formatting, lint, types and every test, as CI runs them.

    python -m bench.suite_time [--json]

Runs ``make test`` once in the repository's root (output in .local/logs/bench-make-test.log) and
reports its wall time, start to exit, and pytest's own summary line. One run takes minutes, so
``--rounds``, which ``make bench`` passes to every benchmark, is ignored. The virtualenv must
exist (``make bench`` makes it first). A ``make test`` that fails fails the benchmark, with the
log's last lines; one still running after 30 minutes is stopped, with all it started.
"""

import re
import subprocess
import sys
import time

from bench import _harness
from bench._harness import Benchmark, Measure, Run, Sample
from local.processes import ROOT, log_path, stop

LOG = log_path("bench-make-test")
TIMEOUT = 30 * 60.0
"""Seconds before a hung ``make test`` is stopped: ten times a normal run."""
SUMMARY = re.compile(r"^=+ (?P<line>\d+ \w+.*? in (?P<seconds>[\d.]+)s\b.*?) =+$", re.MULTILINE)
"""pytest's last line: ``==== 371 passed, 2 skipped in 146.12s (0:02:26) ====``."""


async def prepare(run: Run) -> dict[str, Measure]:
    """One run of ``make test``, whatever ``--rounds`` says."""
    if run.args.rounds != 1:
        run.say(f"--rounds {run.args.rounds} ignored: make test runs once (minutes)")
        run.args.rounds = run.setup["rounds"] = 1

    async def make_test() -> Sample:
        run.say(f"make test in {ROOT} (output in {LOG})")
        LOG.parent.mkdir(parents=True, exist_ok=True)
        with open(LOG, "wb") as log:
            began = time.perf_counter()
            # Its own process group: stopping it (timeout, Ctrl-C) stops pytest and the servers
            # the tests started, not make alone.
            process = subprocess.Popen(
                ["make", "test"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                raise TimeoutError(
                    f"make test still running after {TIMEOUT:.0f}s; see {LOG}"
                ) from None
            finally:
                stop(process)
            wall = time.perf_counter() - began
        output = LOG.read_text(errors="replace")
        found = list(SUMMARY.finditer(output))
        line = found[-1].group("line") if found else "pytest printed no summary line"
        if code != 0:
            tail = "\n".join(output.splitlines()[-30:])
            raise RuntimeError(f"make test exited with {code} ({line}); the end of {LOG}:\n{tail}")
        figures = {"wall": wall, "pytest": float(found[-1].group("seconds")) if found else 0.0}
        figures.update({what: int(n) for n, what in re.findall(r"(\d+) ([a-z]+)", line)})
        return Sample(figures, line)

    return {"make_test": make_test}


BENCHMARK = Benchmark(
    name="suite_time",
    about="the wall time of make test (the install check, ruff, mypy, then pytest)",
    kinds=("make_test",),
    prepare=prepare,
    rounds=1,
    warmup=False,
    local=False,
    labels={
        "wall": "seconds from make test's start to its exit",
        "pytest": "seconds pytest reports",
        "passed": "tests passed",
        "skipped": "tests skipped",
    },
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
