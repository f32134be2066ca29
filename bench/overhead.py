"""A deployment next to a workflow that does nothing with as many activities: the orchestration's share.

    python -m bench.overhead [--rounds 5] [--json] [--server-config KEY=VALUE]

Starts the local environment in one region (``local_stack``: Temporal's dev server, moto as AWS,
the two sample game servers) and one worker, and times, from just before the start request to
the result, two workflows side by side:

- **the deployment**: ``BlueGreenDeployment`` of a new version, started as ``client.py deploy``
  starts it (``cli.deployment_kinds.start``: its root span, its check that no switch runs, then
  the start with the BlueGreen* search attributes, which the workflow then keeps up to date),
  with nothing to wait for, as in ``bench/multi_region.py``: moto reports the new color healthy
  at its first check, the demo's integration check (one HTTP GET), no bake (and so no alarms),
  no players (the drain ends at its first count). Its activities are counted from its history
  and its children's (``ActivityTaskScheduled`` events; a health, bake or drain wait that runs
  long moves to a child, ``<id>-health``, ``-bake`` or ``-drain``; short ones stay inline);
- **the trivial workflow** (``bench/_trivial.py``): exactly that many activities, one after the
  other, each returning at once, through the same ``Calls.activity`` as the deployment's.

Both run on one worker process: ``worker.py``'s own code with the trivial workflow registered
as well (``bench/_worker.py``), on the same task queue, so both get the same thread pool, slots
and eager activity dispatch. A warm-up of each runs first and is reported, not counted (the
worker's first deployment creates its boto3 clients; its first workflows load their code); the
warm-up deployment's history gives the activity count. Then each round runs both, deployment
first in odd rounds and trivial first in even ones. Every deployment deploys a version never
deployed before (2, 3, …) over what the previous one left, and the benchmark checks SSM, the
router's weights and both colors' desired counts afterwards, as ``make demo`` does.

Reported: the median, min and max wall time of each, the ratio deployment / trivial (of the
medians, and per round), the time per activity (each workflow's median over its activity
count) and the deployment's extra time per activity over the trivial one; from the histories
(server clock), where the time went: workflow tasks waiting to be handed to the worker and
running on it, activities waiting and running, and the CPU seconds of the worker, the dev
server and moto (from /proc). The dev server's history service reads its transfer queue at most
20 times a second (``history.transferProcessorMaxPollRPS``, default 20), so every workflow task
handed to the worker waits up to 50 ms: that pace, not the workflow code, sets both figures.
``--server-config history.transferProcessorMaxPollRPS=1000`` lifts it. ``--json`` prints one
JSON document on stdout instead of the tables (progress goes to stderr either way).
"""

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench import _report
from bench._stack import bench_stack, bench_worker, deployment_request, measure_on
from bench._trivial import TrivialWorkflow
from cli.deployment_kinds import start
from cli.deployments import final_status
from local.processes import STATE_DIR
from local.stack import LocalStack
from local.state import mismatches, read_state
from models.colors import other_color
from models.config import EnvironmentConfig
from models.deployment import State
from runtime.connection import task_queue

DEFAULT_ROUNDS = 5
TIMEOUT = 120.0
"""Seconds any one workflow may take before the benchmark gives up."""
FIRST_VERSION = 2
BY = "bench/overhead.py"
DEPLOYMENT = "deployment"
TRIVIAL = "trivial"
KINDS = (DEPLOYMENT, TRIVIAL)
WORKER_NAMES = {"bench._worker": "worker", "start-dev": "Temporal", "moto_server": "moto"}
"""CpuMeter's names: the worker here is ``python -m bench._worker``, not ``worker.py``."""
CPU_NAMES = (*WORKER_NAMES.values(), "others")


@dataclass
class Sample:
    """One workflow run; seconds."""

    round: int
    """0 for the warm-up, not counted."""
    kind: str
    wall: float
    """Just before the start request → the result returned to this process."""
    workflow: float
    """The workflow's history: first event → last (server clock)."""
    activities: int
    """``ActivityTaskScheduled`` events in its history and its children's."""
    children: int
    workflow_tasks: int
    task_waits: float
    """Sum over the workflow tasks of scheduled → started: waiting to be handed to the worker."""
    task_runs: float
    """Sum of started → completed: the worker running the workflow code."""
    activity_waits: float
    activity_runs: float
    cpu: dict[str, float] = field(default_factory=dict)
    """Process → CPU seconds used during the run (empty without /proc); ``others``: every
    other process on this shared machine."""


def sample(
    number: int,
    kind: str,
    wall: float,
    recorded: dict[str, list[HistoryEvent]],
    cpu: dict[str, float],
) -> Sample:
    """The figures of one run from its histories (the workflow's first, then its children's)."""
    times = _report.TaskTimes(recorded.values())
    every = [e for events in recorded.values() for e in events]
    main = next(iter(recorded.values()))
    return Sample(
        round=number,
        kind=kind,
        wall=wall,
        workflow=_report.at(main[-1]) - _report.at(main[0]),
        activities=_report.count_events(every, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        children=len(recorded) - 1,
        workflow_tasks=len(times.task_runs),
        task_waits=sum(times.task_waits),
        task_runs=sum(times.task_runs),
        activity_waits=sum(times.activity_waits),
        activity_runs=sum(times.activity_runs),
        cpu=cpu,
    )


class Runner:
    """Runs either workflow on the local environment and measures it."""

    def __init__(self, client: Client, stack: LocalStack, env: EnvironmentConfig) -> None:
        self.client = client
        self.stack = stack
        self.env = env
        self.cpu = _report.CpuMeter(WORKER_NAMES)
        self.activities = 0
        """How many activities the trivial workflow runs: set from the warm-up deployment."""
        self._versions = itertools.count(FIRST_VERSION)
        self._trivial_ids = itertools.count()

    async def run(self, kind: str, number: int) -> Sample:
        """One run of ``kind``, timed, checked, read from its history."""
        return await (self.deploy(number) if kind == DEPLOYMENT else self.trivial(number))

    async def deploy(self, number: int) -> Sample:
        """Deploy the next version; fails unless it succeeded and left the state it should."""
        version = str(next(self._versions))
        service, environment = self.stack.resources.service, self.stack.environment
        request = deployment_request(service, environment, self.env, version, BY)
        before = read_state(self.env).ssm.active_color
        cpu_before = _report.cpu_reading(self.cpu)
        started = time.perf_counter()
        handle = await start(self.client, request, task_queue())
        final = await asyncio.wait_for(final_status(handle), TIMEOUT)
        wall = time.perf_counter() - started
        cpu = _report.cpu_reading(self.cpu)
        if final.state != State.SUCCEEDED:
            raise RuntimeError(f"version {version} ended {final.state.value}: {final.report}")
        desired = self.stack.resources.desired_count
        problems = mismatches(read_state(self.env), other_color(before), version, desired)
        if problems:
            raise RuntimeError(f"version {version}: {'; '.join(problems)}")
        recorded = await _report.histories(self.client, handle.id, handle.run_id)
        used = _report.cpu_used(cpu_before, cpu)
        return sample(number, DEPLOYMENT, wall, recorded, used)

    async def trivial(self, number: int) -> Sample:
        """The trivial workflow with as many activities as the warm-up deployment had."""
        cpu_before = _report.cpu_reading(self.cpu)
        started = time.perf_counter()
        handle = await self.client.start_workflow(
            TrivialWorkflow.run,
            self.activities,
            id=f"bench-trivial-{next(self._trivial_ids)}",
            task_queue=task_queue(),
        )
        ran = await asyncio.wait_for(handle.result(), TIMEOUT)
        wall = time.perf_counter() - started
        cpu = _report.cpu_reading(self.cpu)
        if ran != self.activities:
            raise RuntimeError(f"the trivial workflow ran {ran} activities, not {self.activities}")
        recorded = await _report.histories(self.client, handle.id, handle.run_id)
        used = _report.cpu_used(cpu_before, cpu)
        return sample(number, TRIVIAL, wall, recorded, used)


# --- the whole run --------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the run was measured with."""

    rounds: int
    cpus: int | None
    health_poll: float
    drain_poll: float
    integration_checks: list[str]
    server_config: dict[str, Any]


Results = _report.Sampled[Setup, Sample]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Start the local environment and the benchmark's worker, measure, stop everything."""
    config = STATE_DIR / "bench" / "overhead" / "deploy.toml"
    with (
        bench_stack(config, say, server_config=args.server_config, start_worker=False) as stack,
        bench_worker(stack) as log,
    ):
        say(f"worker.py with the trivial workflow added, polling (log: {log})")
        return measure_on(stack, lambda client: measure(client, stack, args, say), say, log)


async def measure(
    client: Client, stack: LocalStack, args: argparse.Namespace, say: Callable[[str], None]
) -> Results:
    """The warm-ups, then every round; see the module's docstring."""
    env = _report.with_bake(stack.environment_config(), 0)
    runner = Runner(client, stack, env)
    results = Results(
        Setup(rounds=args.rounds, **_report.deployment_setup(env, args.server_config))
    )
    first = await runner.deploy(0)
    runner.activities = first.activities
    results.warmup.append(first)
    say(
        f"warm-up (not counted): deployment {first.wall:.3f}s, {first.activities} activities"
        f" in {first.children + 1} workflows"
    )
    results.warmup.append(await runner.trivial(0))
    say(f"warm-up (not counted): trivial {results.warmup[-1].wall:.3f}s")
    for number in range(1, args.rounds + 1):
        for kind in KINDS if number % 2 else tuple(reversed(KINDS)):
            measured = await runner.run(kind, number)
            results.samples.append(measured)
            say(f"round {number}/{args.rounds}: {kind} {measured.wall:.3f}s")
    return results


# --- output -------------------------------------------------------------------------------------


def of(samples: Sequence[Sample], kind: str) -> list[Sample]:
    return [s for s in samples if s.kind == kind]


MEASURES: tuple[tuple[str, str], ...] = (
    ("wall", "start request → result"),
    ("workflow", "workflow started → closed (server clock)"),
    ("task_waits", "workflow tasks waiting to be handed to the worker (sum)"),
    ("task_runs", "workflow tasks running on the worker (sum)"),
    ("activity_waits", "activities waiting to start (sum)"),
    ("activity_runs", "activities running (sum)"),
    ("workflow_tasks", "workflow tasks"),
    ("activities", "activities"),
    ("children", "child workflows"),
    *((f"cpu_{n}", f"CPU seconds: {n}") for n in WORKER_NAMES.values()),
    ("cpu_others", "CPU seconds: everything else on this machine"),
)
COUNTS = ("workflow_tasks", "activities", "children")


def breakdown(samples: Sequence[Sample]) -> dict[str, dict[str, dict[str, float]]]:
    """Kind → measure → median, min and max over the rounds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        mine = of(samples, kind)
        measures: dict[str, list[float]] = {
            key: [float(getattr(s, key)) for s in mine]
            for key, _ in MEASURES
            if not key.startswith("cpu_")
        }
        measures.update(_report.cpu_measures([s.cpu for s in mine], CPU_NAMES))
        out[kind] = {name: _report.stats(values) for name, values in measures.items()}
    return out


def summary(results: Results) -> dict[str, Any]:
    """The figures: each kind's measures, the ratios, the time per activity."""
    figures = breakdown(results.samples)
    deployment = figures[DEPLOYMENT]["wall"]["median"]
    trivial = figures[TRIVIAL]["wall"]["median"]
    activities = results.warmup[0].activities
    pairs = zip(of(results.samples, DEPLOYMENT), of(results.samples, TRIVIAL), strict=True)
    return {
        "kinds": figures,
        "activities": activities,
        "ratio": deployment / trivial,
        "ratio_per_round": _report.stats([d.wall / t.wall for d, t in pairs]),
        "per_activity": {"deployment": deployment / activities, "trivial": trivial / activities},
        "extra_per_activity": (deployment - trivial) / activities,
        "task_waits_share": {
            kind: figures[kind]["task_waits"]["median"] / figures[kind]["wall"]["median"]
            for kind in KINDS
        },
    }


def as_json(results: Results) -> str:
    """One JSON document: the setup, every sample (the warm-ups apart) and the summary."""
    return _report.json_text({**asdict(results), "summary": summary(results)})


def report(results: Results) -> str:
    """The tables and the summary lines, for a terminal."""
    s = results.setup
    figures = summary(results)
    kinds = figures["kinds"]
    n = figures["activities"]
    lines = [
        _report.environment_line("overhead", s.rounds, s.server_config, s.cpus),
        f"deployment: one region, healthy at the first check (polled every {s.health_poll:g}s),"
        f" integration check {', '.join(s.integration_checks)}, no bake, no players (drain"
        f" polled every {s.drain_poll:g}s); {n} activities in"
        f" {kinds[DEPLOYMENT]['children']['median'] + 1:.0f} workflows (from its history);"
        f" trivial: {n} activities doing nothing, one after the other",
        "",
        "seconds from the start request to the result (order: d = deployment, t = trivial):",
    ]
    deployments, trivials = of(results.samples, DEPLOYMENT), of(results.samples, TRIVIAL)
    rows = [
        [
            str(d.round),
            "d,t" if d.round % 2 else "t,d",
            f"{d.wall:.3f}",
            f"{t.wall:.3f}",
            f"{d.wall / t.wall:.3f}",
        ]
        for d, t in zip(deployments, trivials, strict=True)
    ]
    lines += _report.table(
        ["round", "order", DEPLOYMENT, TRIVIAL, "ratio"],
        _report.with_stats(
            rows,
            [
                None,
                None,
                [d.wall for d in deployments],
                [t.wall for t in trivials],
                [float(r[-1]) for r in rows],
            ],
        ),
    )
    warm = ", ".join(f"{w.kind} {w.wall:.3f}" for w in results.warmup)
    lines += ["", f"    warm-up, not counted: {warm}", ""]
    lines.append("where the time went (median; seconds unless counted):")
    detail_rows = []
    for key, label in MEASURES:
        if key not in kinds[DEPLOYMENT]:
            continue
        form = "{:.0f}" if key in COUNTS else "{:.3f}"
        detail_rows.append([label, *(form.format(kinds[k][key]["median"]) for k in KINDS)])
    lines += _report.labelled_table(["", *KINDS], detail_rows)
    if not any(k.startswith("cpu_") for k in kinds[DEPLOYMENT]):
        lines.append("  (no CPU figures: /proc is not available here)")
    counted = kinds[DEPLOYMENT]["activities"]
    if counted["min"] != counted["max"]:
        lines.append(
            f"  (the deployments ran {counted['min']:.0f} to {counted['max']:.0f} activities;"
            f" the trivial workflow {n}, as the warm-up deployment did)"
        )
    per = figures["per_activity"]
    times = "\N{MULTIPLICATION SIGN}"
    lines += [
        "",
        f"deployment: median {kinds[DEPLOYMENT]['wall']['median']:.3f} s; trivial with the same"
        f" {n} activities: median {kinds[TRIVIAL]['wall']['median']:.3f} s; ratio"
        f" {figures['ratio']:.2f}{times}",
        f"per activity: deployment {per['deployment'] * 1000:.1f} ms, trivial"
        f" {per['trivial'] * 1000:.1f} ms; the deployment's extra per activity"
        f" {figures['extra_per_activity'] * 1000:.1f} ms",
        f"workflow tasks waiting for the dev server to hand them over: "
        f"{figures['task_waits_share'][DEPLOYMENT]:.0%} of the deployment's wall time,"
        f" {figures['task_waits_share'][TRIVIAL]:.0%} of the trivial workflow's",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _report.arguments(
        "python -m bench.overhead",
        "A deployment next to a do-nothing workflow with as many activities.",
        DEFAULT_ROUNDS,
    )
    _report.add_server_config(parser)
    return _report.parse(parser, argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every deployment did what it should."""
    return _report.run_benchmark(parse_args(argv), run, as_json, report)


if __name__ == "__main__":
    sys.exit(main())
