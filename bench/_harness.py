"""The harness every benchmark runs in: ``python -m bench.NAME [--rounds N] [--json] [...]``.

A benchmark is a ``Benchmark``: the kinds of run it measures side by side, and ``prepare``, which
gets the local environment the harness started (``Run``) and returns how to measure one run of
each kind: a ``Sample`` of figures (seconds unless named otherwise; ``wall`` in every one).

For each of the benchmark's dev-server configurations (``Benchmark.configs``; one unless it
says otherwise), the harness starts the local environment (``local_stack``: Temporal's dev
server, moto, the data plane behind it, a worker; no Web UI, free ports), runs one warm-up of
each kind (reported, not counted), then ``--rounds`` rounds of every kind, in order in odd rounds
and in reverse order in even ones, and stops everything. It reports the median, min and max of
every figure over the rounds, and the ratios of two kinds' medians (each configuration's, side
by side in one run): as tables on stdout, or as one JSON document with ``--json``. Progress
goes to stderr. Exit code: 0 when every run did what it should, 1 when one did not, 130 when
interrupted. ``--server-config KEY=VALUE`` (repeatable) adds to the dev server's dynamic config.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from cli import deployment_kinds
from cli.deployments import AnyHandle, AnyRequest, AnyStatus, ended_status
from local.processes import RUNNING, STATE_DIR, free_port, worker_log
from local.stack import REGION, LocalStack, exit_code, local_stack
from local.state import mismatches, read_state
from models.colors import Color
from models.config import BakeConfig, EnvironmentConfig
from models.deployment import DeploymentRequest, State
from runtime.connection import task_queue

Figures = dict[str, float]
Stats = dict[str, float]
"""``median``, ``min`` and ``max``."""
DEFAULT = "default"
TIMEOUT = 120.0
"""Seconds a deployment may take before the benchmark gives up."""
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TIMES = "\N{MULTIPLICATION SIGN}"
LABELS = {
    "workflow": "workflow started → closed (server clock)",
    "task_waits": "workflow tasks waiting to be handed to the worker (sum)",
    "task_runs": "workflow tasks running on the worker (sum)",
    "activity_runs": "activities running (sum)",
    "workflow_tasks": "workflow tasks (the children's included)",
    "activities": "activities",
    "children": "child workflows (health, bake and drain waits that ran long; regions)",
    "task_wait": "a workflow task: scheduled → started (median)",
    "task_run": "a workflow task: started → completed (median)",
    "activity_run": "an activity: started → completed (median)",
    "cpu_worker": "CPU seconds: the worker",
    "cpu_temporal": "CPU seconds: the Temporal dev server",
    "cpu_moto": "CPU seconds: moto",
}
"""What the report shows of ``_history.figures`` and ``cpu_used``, after a benchmark's own."""


@dataclass
class Sample:
    """One measured run: its figures and a few words for the round table."""

    figures: Figures
    note: str = ""
    kind: str = ""
    round: int = 0
    """0 for the warm-up: reported, not counted."""


Measure = Callable[[], Awaitable[Sample]]


@dataclass
class Run:
    """What ``Benchmark.prepare`` is given, once per dev-server configuration."""

    args: argparse.Namespace
    say: Callable[[str], None]
    setup: dict[str, Any]
    """What the runs are measured with, as the report and the JSON show it: ``prepare`` adds
    what its benchmark sets."""
    started: tuple[LocalStack, Client] | None = None

    def local(self) -> tuple[LocalStack, Client]:
        """The local environment started for this configuration, and a client of its Temporal
        (with the product's pydantic data converter)."""
        if self.started is None:
            raise RuntimeError("this benchmark runs without the local environment")
        return self.started


@dataclass
class Benchmark:
    """A benchmark as the harness runs it (see the module's docstring)."""

    name: str
    """Its module under bench/: ``python -m bench.NAME``."""
    about: str
    kinds: tuple[str, ...]
    prepare: Callable[[Run], Awaitable[dict[str, Measure]]]
    labels: dict[str, str]
    """What the printed report shows, in this order, and what each is: the kinds' figures
    (``wall`` first: the round table's) and the summary's. The JSON has every figure."""
    ratios: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """Name → (kind, other kind, figure): the first kind's median of the figure over the other's;
    also per round."""
    summarize: Callable[[dict[str, Figures]], Figures] = lambda medians: {}
    """Further summary figures from every kind's medians (kind → figure → median)."""
    rounds: int = 5
    warmup: bool = True
    configs: dict[str, dict[str, object]] = field(default_factory=lambda: {DEFAULT: {}})
    """Dev-server configurations, each measured on a local environment of its own: name → its
    dynamic config, on top of ``--server-config``. Summary figures of any configuration but the
    first are named FIGURE_NAME (``ratio_tuned``)."""
    local: bool = True
    """False: runs without the local environment."""
    search_attributes: bool = True
    """Registers the BlueGreen* search attributes: the deployments then keep them up to date."""
    regions: tuple[str, ...] = (REGION,)
    worker_args: tuple[str, ...] = ("worker.py",)
    game_seconds: float = 3
    """The length of a player's game, for benchmarks that seat players."""
    options: dict[str, float] = field(default_factory=dict)
    """Its own command-line options, ``--NAME``, with their defaults (and so their types)."""
    spread: dict[str, str] = field(default_factory=dict)
    """Summary name → figure: the summary gives that figure's median, min and max over the
    rounds for each kind that has it (``{"canary": {"median": …, "min": …, "max": …}}``)."""
    analysis: bool = False
    """The local environment's config judges deployments with the metric analysis."""


@dataclass
class Measured:
    """One configuration's setup and samples, the warm-ups (round 0) included."""

    setup: dict[str, Any]
    samples: list[Sample]
    summary: dict[str, Any] = field(default_factory=dict)
    """The benchmark's ``summarize`` figures and its ratios."""

    def of(self, kind: str) -> list[Sample]:
        """The counted samples of ``kind``, round by round."""
        return [s for s in self.samples if s.kind == kind and s.round]

    def kinds(self) -> dict[str, dict[str, Stats]]:
        """Kind → figure → ``stats`` over the rounds, of the figures every round has."""
        found: dict[str, dict[str, Stats]] = {}
        for kind in dict.fromkeys(s.kind for s in self.samples):
            mine = self.of(kind)
            keys = [k for k in mine[0].figures if all(k in s.figures for s in mine)]
            found[kind] = {k: stats([s.figures[k] for s in mine]) for k in keys}
        return found


@dataclass
class Results:
    """Everything a benchmark reports: each configuration's runs and the summary."""

    benchmark: str
    runs: dict[str, Measured]
    summary: dict[str, Any]


def stats(values: Sequence[float]) -> Stats:
    """median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --- measuring ------------------------------------------------------------------------------------


def cpu_seconds() -> Figures:
    """CPU seconds (user + system) used so far by the processes ``background`` runs, summed by
    the first word of their names: ``cpu_worker``, ``cpu_temporal``, ``cpu_moto``,
    ``cpu_data`` (the data plane's own process: its HAProxy and game servers not included),
    ``cpu_bench`` (the benchmark's load). Read from /proc: empty without it."""
    used: Figures = {}
    for name, process in list(RUNNING.items()):
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        key = f"cpu_{name.split('-')[0]}"
        # utime and stime: the 14th and 15th fields of the whole line, in clock ticks.
        used[key] = used.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return used


def cpu_used(before: Figures) -> Figures:
    """``cpu_seconds`` used since the reading ``before``."""
    return {key: value - before.get(key, 0.0) for key, value in cpu_seconds().items()}


def request(
    stack: LocalStack, env: EnvironmentConfig, version: str, by: str, service: str = ""
) -> DeploymentRequest:
    """A deployment of ``version`` (image SERVICE:VERSION) of ``service`` (the stack's unless
    named) to ``env``, requested by ``by``."""
    service = service or stack.resources.service
    return DeploymentRequest(
        service=service,
        environment=stack.environment,
        version=version,
        image=f"{service}:{version}",
        target=env,
        requested_by=by,
    )


async def deploy(client: Client, wanted: AnyRequest) -> tuple[AnyHandle, AnyStatus, Figures]:
    """Start ``wanted`` as ``client.py deploy`` does (``cli.deployment_kinds.start``) and wait for its
    end: its handle, its final status and its figures: ``wall`` (just before the start request →
    the result), ``start`` (→ the start request answered) and the CPU each local process used
    meanwhile. RuntimeError unless it succeeded."""
    cpu = cpu_seconds()
    began = time.perf_counter()
    handle = await deployment_kinds.start(client, wanted, task_queue())
    started = time.perf_counter() - began
    status = await asyncio.wait_for(
        ended_status(handle, deployment_kinds.for_request(wanted).status_type), TIMEOUT
    )
    figures = {"wall": time.perf_counter() - began, "start": started, **cpu_used(cpu)}
    if status.state != State.SUCCEEDED:
        raise RuntimeError(f"{handle.id}, version {wanted.version}: {status.state.value}")
    return handle, status, figures


def with_bake(env: EnvironmentConfig, seconds: float) -> EnvironmentConfig:
    """``env`` with a bake of ``seconds`` watching its alarms; none at all (nor alarms) for 0."""
    bake = (
        env.bake.model_copy(update={"duration": timedelta(seconds=seconds)})
        if seconds
        else BakeConfig(duration=timedelta(0))
    )
    return env.model_copy(update={"bake": bake})


def check(env: EnvironmentConfig, active: Color, version: str, desired: int, what: str) -> None:
    """RuntimeError unless ``env`` is as a finished deployment of ``version`` to ``active``
    leaves it (SSM, the router's weights, both colors' counts), as ``make demo`` checks."""
    problems = mismatches(read_state(env), active, version, desired)
    if problems:
        raise RuntimeError(f"{what}: {'; '.join(problems)}")


async def rounds(bench: Benchmark, run: Run) -> list[Sample]:
    """``prepare``, the warm-ups, then every round (see the module's docstring)."""
    measures = await bench.prepare(run)
    samples = []
    for number in range(0 if bench.warmup else 1, run.args.rounds + 1):
        for kind in bench.kinds[:: -1 if number and number % 2 == 0 else 1]:
            sample = await measures[kind]()
            sample.kind, sample.round = kind, number
            samples.append(sample)
            when = f"round {number}/{run.args.rounds}" if number else "warm-up (not counted)"
            run.say(f"{when}: {kind} {sample.figures['wall']:.3f}s {sample.note}".rstrip())
        worker = run.started[0].worker if run.started else None
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
    return samples


def measure(bench: Benchmark, run: Run) -> list[Sample]:
    """``rounds`` on a local environment started with ``run.setup["server_config"]``, stopped
    at the end; when a run fails, says where the worker's log is."""
    if not bench.local:
        return asyncio.run(rounds(bench, run))
    with local_stack(
        temporal_port=free_port(),
        ui_port=None,
        config_path=STATE_DIR / "bench" / bench.name / "deploy.toml",
        players=0,
        game_seconds=bench.game_seconds,
        regions=bench.regions,
        worker_args=bench.worker_args,
        dynamic_config=run.setup["server_config"],
        search_attributes=bench.search_attributes,
        analysis=bench.analysis,
        say=run.say,
    ) as stack:

        async def connected() -> list[Sample]:
            client = await Client.connect(
                stack.temporal_address, data_converter=pydantic_data_converter
            )
            run.started = stack, client
            return await rounds(bench, run)

        try:
            return asyncio.run(connected())
        except BaseException:
            run.say(f"worker log: {worker_log(stack.temporal_address)}")
            raise


def run_all(bench: Benchmark, args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Every configuration measured in turn; the summary of each."""
    results = Results(bench.name, {}, {})
    for index, (config, dynamic) in enumerate(bench.configs.items()):
        server = {**args.server_config, **dynamic}
        setup: dict[str, Any] = {"rounds": args.rounds, "cpus": os.cpu_count()}
        if bench.local:
            say(f"{config}: the Temporal dev server with {server_text(server)}")
            setup["server_config"] = server
        run = Run(args, say, setup)
        measured = results.runs[config] = Measured(setup, measure(bench, run))
        medians = {
            kind: {key: value["median"] for key, value in figures.items()}
            for kind, figures in measured.kinds().items()
        }
        measured.summary = dict(bench.summarize(medians))
        for name, key in bench.spread.items():
            measured.summary[name] = {
                kind: figures[key] for kind, figures in measured.kinds().items() if key in figures
            }
        for name, each in ratios(bench, measured).items():
            kind, other, key = bench.ratios[name]
            measured.summary[name] = medians[kind][key] / medians[other][key]
            measured.summary[f"{name}_per_round"] = stats(each)
        suffix = f"_{config}" if index else ""
        results.summary.update({f"{k}{suffix}": v for k, v in measured.summary.items()})
    return results


def ratios(bench: Benchmark, measured: Measured) -> dict[str, list[float]]:
    """Each of the benchmark's ratios, round by round."""
    return {
        name: [
            a.figures[key] / b.figures[key]
            for a, b in zip(measured.of(kind), measured.of(other), strict=True)
        ]
        for name, (kind, other, key) in bench.ratios.items()
    }


# --- the command line and the output --------------------------------------------------------------


def main(bench: Benchmark, argv: list[str] | None = None) -> int:
    """Run ``bench`` as a command (see the module's docstring); its exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{bench.name}", description=bench.about)
    parser.add_argument("--rounds", type=int, default=bench.rounds, help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--server-config",
        type=setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dynamic config for the Temporal dev server (repeatable)",
    )
    for name, default in bench.options.items():
        parser.add_argument(f"--{name}", type=type(default), default=default, help="%(default)s")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.server_config = dict(args.server_config)

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    def measured() -> int:
        results = run_all(bench, args, say)
        print(json_text(results) if args.json else report(bench, results), flush=True)
        return 0

    return exit_code(measured, say)


def setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (KEY, VALUE as JSON where it parses, else the string)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def server_text(config: dict[str, Any]) -> str:
    """The dev server's dynamic config as the reports name it."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in config.items()) or "its defaults"


def json_text(results: Results) -> str:
    """``results`` as one indented JSON document, the kinds' statistics added, every float
    rounded to 6 decimals (read back with ``parse_float``)."""
    document = asdict(results)
    for config, measured in results.runs.items():
        document["runs"][config]["kinds"] = measured.kinds()
    rounded = json.loads(json.dumps(document), parse_float=lambda text: round(float(text), 6))
    return json.dumps(rounded, indent=2)


def number(value: float) -> str:
    """Seconds to the millisecond; whole numbers (counts; 0) as they are."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Right-aligned columns under their headers, but the first, left-aligned."""
    rows = [headers, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def report(bench: Benchmark, results: Results) -> str:
    """For a terminal: each configuration's rounds and medians, then the summary."""
    lines = [f"{bench.name} benchmark: {bench.about}"]
    for config, measured in results.runs.items():
        lines += ["", *setup_lines(config, measured.setup), ""]
        lines += round_table(bench, measured)
        lines += ["", "median of each figure over the rounds:"]
        kinds = measured.kinds()
        # The benchmark's labels first, and before the common ones where both name a figure.
        rows = [
            [label, *(number(kinds[k][key]["median"]) if key in kinds[k] else "-" for k in kinds)]
            for key, label in {**bench.labels, **LABELS, **bench.labels}.items()
            if any(key in figures for figures in kinds.values())
        ]
        lines += ["  " + line for line in table(["", *kinds], rows)]
        lines.append("")
        for key, value in measured.summary.items():
            if key in bench.ratios:
                lines.append(f"{bench.labels.get(key, key)}: {value:.2f}{TIMES}")
            elif isinstance(value, dict):
                lines.append(
                    f"{bench.labels.get(key, key)}: "
                    + "; ".join(
                        f"{kind} {number(each['median'])} (min {number(each['min'])},"
                        f" max {number(each['max'])})"
                        for kind, each in value.items()
                    )
                )
            elif not key.endswith("_per_round"):
                lines.append(f"{bench.labels.get(key, key)}: {number(value)}")
    return "\n".join(lines)


def setup_lines(config: str, setup: dict[str, Any]) -> list[str]:
    """What a configuration's runs were measured with."""
    where = f"{setup['cpus']} CPUs"
    if "server_config" in setup:
        server = server_text(setup["server_config"])
        where = f"the Temporal dev server with {server}, moto and the worker share {where}"
    return [f"[{config}] {setup['rounds']} round(s); {where}"] + [
        f"  {key}: {value}"
        for key, value in setup.items()
        if key not in ("rounds", "cpus", "server_config")
    ]


def round_table(bench: Benchmark, measured: Measured) -> list[str]:
    """``wall`` of each kind round by round and the ratios per round, with their median, min
    and max; the samples' notes where they have any."""
    columns = {kind: [s.figures["wall"] for s in measured.of(kind)] for kind in bench.kinds}
    columns.update(ratios(bench, measured))
    rounds = range(1, measured.setup["rounds"] + 1)
    notes = [" ".join(s.note for s in measured.samples if s.round == i).strip() for i in rounds]
    rows = [[str(i), *(number(c[i - 1]) for c in columns.values())] for i in rounds]
    for name, pick in (("median", statistics.median), ("min", min), ("max", max)):
        rows.append([name, *(number(pick(c)) for c in columns.values())])
    if any(notes):
        rows = [[*row, note] for row, note in zip(rows, [*notes, "", "", ""], strict=True)]
    warm = ", ".join(
        f"{s.kind} {number(s.figures['wall'])}" for s in measured.samples if not s.round
    )
    return [
        f"{bench.labels['wall']}, round by round"
        + (" (order reversed in even rounds):" if len(bench.kinds) > 1 else ":"),
        *table(["round", *columns, *(["notes"] if any(notes) else [])], rows),
        *([f"  warm-up, not counted: {warm}"] if warm else []),
    ]
