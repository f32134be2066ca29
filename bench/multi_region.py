"""Five regions at once vs. one region: the wall time of the same deployment, side by side.

    python -m bench.multi_region [--rounds 5] [--json] [--bake SECONDS] [--server-config KEY=VALUE]

Starts the local environment in five regions (``local_stack`` with ``DEMO_REGIONS``: Temporal's
dev server, moto as AWS in all five, a pair of sample game servers per region, one worker as
``make demo`` runs it) and times, from just before the start request to the result, three
deployments of the same version sequence:

- **one region**: ``BlueGreenDeployment`` to us-west-2, what ``client.py deploy`` starts for a
  one-region environment;
- **parent, one region**: ``MultiRegionDeployment`` with us-west-2 alone (``--region`` with one
  region): the same, plus the parent and its child;
- **five regions**: ``MultiRegionDeployment`` to us-west-2, us-east-1, eu-west-1,
  ap-southeast-2 and eu-central-1 in one wave, as the environment's ``regions`` say.

The deployment is the demo's with nothing to wait for, so that what is measured is the
orchestration: moto reports the new color healthy at its first check (polls every 1 s, as in
the demo, but none is needed), the demo's integration check (one HTTP GET of the new color's
game server, no delay), no bake (and so no alarms), no players: the drain ends at its first
connection count. Each region's sequence is then twelve activities, one after the other, and
the thirteen workflow tasks around them.

Rounds. Every deployment deploys a version never deployed before (2, 3, 4, …, image game:N)
to the inactive color of each region it covers. So each starts from what the one before left,
which is what every finished deployment leaves (one color active with all the traffic, the
other at zero), and does the same work: a new task-definition revision, the inactive color
scaled up, checked, switched to, the old one drained and scaled to zero. us-west-2 is deployed
three times a round, the other regions once; which color is active makes no difference to the
work. After each deployment the benchmark checks SSM, the router weights and both colors'
desired counts in every region it covered, as ``make demo`` does; one that did not do what it
should fails the run. The three run in the order above in odd rounds and in reverse in even
rounds. One deployment of each kind runs first, as a warm-up, and is reported but not counted:
a worker's first deployment to a region creates its boto3 clients there (about 60 ms of CPU
each) and its first multi-region deployment loads the parent's code, which a long-running
worker pays once.

Reported: the median, min and max wall time of each kind, the ratio of the medians five regions /
one region (the aim is at most 1.3 times), and where the time went, from the workflows' histories
(server clock; every child's included, also the ``<id>-health``, ``-bake`` and ``-drain`` children
a region's deployment starts for a wait that runs long): the parent's start to its last child's
start; the slowest region's workflow, with the sums of its workflow tasks' waits to be handed to
the worker (scheduled → started) and runs on the worker, of its activities' runs, and the time from
its last report to the parent (signal ``region_progress``) to its end, which it waits for; the last
child's end to the parent's end; how many workflow tasks the deployment took, and the median wait
and run of one. On Linux, the CPU seconds that the worker, the Temporal dev server and moto used
during each deployment (from /proc): everything shares this machine, whose CPU count is printed.

Deployments run back to back, and so all three meet the dev server in the same state: its
history service reads its transfer queue (what hands a workflow task to the worker, starts a
child, delivers a signal) at most 20 times a second once a short burst is spent
(``history.transferProcessorMaxPollRPS``, default 20), so each of those steps waits up to 50 ms.
That is the largest part of a one-region deployment here, and why the figures depend on how the
server is set: ``--server-config history.transferProcessorMaxPollRPS=1000`` lifts the limit, and
then the five regions are bound by this machine's CPUs instead.

``--bake SECONDS`` gives every deployment a bake of that length (the demo's alarm read every
second): a deployment that waits, as real ones do, next to the same overhead. ``--server-config
KEY=VALUE`` (repeatable) sets the dev server's dynamic config, e.g.
``history.transferProcessorMaxPollRPS=1000``. ``--json`` prints one JSON document on stdout
instead of the tables (progress goes to stderr either way).
"""

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench import _report
from bench._report import CpuMeter, TaskTimes, at
from bench._stack import bench_stack, measure_on
from cli.deployments import deployment_id
from local.processes import STATE_DIR
from local.stack import DEMO_REGIONS, REGION, LocalStack
from local.state import mismatches, read_state
from models.colors import other_color
from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest
from models.multi_region import MultiRegionRequest
from runtime.connection import task_queue
from workflows.deployment import BlueGreenDeployment
from workflows.multi_region import MultiRegionDeployment

DEFAULT_ROUNDS = 5
AIM = 1.3
"""The ratio five regions / one region this benchmark is meant to stay under."""
DEPLOYMENT_TIMEOUT = 120.0
"""Seconds any one deployment may take before the benchmark gives up."""
FIRST_VERSION = 2
BY = "bench/multi_region.py"


@dataclass(frozen=True)
class Kind:
    """One of the three deployments measured side by side."""

    key: str
    label: str
    parent: bool
    """Started as ``MultiRegionDeployment`` (else ``BlueGreenDeployment``)."""
    regions: tuple[str, ...]


ONE = Kind("one_region", "one region", False, (REGION,))
PARENT_ONE = Kind("parent_one_region", "parent, one region", True, (REGION,))
FIVE = Kind("five_regions", "five regions", True, DEMO_REGIONS)
KINDS = (ONE, PARENT_ONE, FIVE)
KINDS_BY_KEY = {kind.key: kind for kind in KINDS}


# --- one deployment -----------------------------------------------------------------------------


@dataclass
class Sample:
    """One deployment; seconds."""

    round: int
    """0 for the warm-up, not counted."""
    kind: str
    version: str
    wall: float
    """Just before the start request → the result returned to this process."""
    workflow: float
    """The deployment's workflow (the parent, where there is one): started → closed."""
    children_started: float | None
    """The parent started → its last child started."""
    child_runs: dict[str, float]
    """Region → its workflow started → closed (for one region: the workflow itself)."""
    after_children: float | None
    """The last child closed → the parent closed."""
    workflow_tasks: int
    """Workflow tasks completed, the parent's and every child's: the regions' workflows and the
    children they start themselves (long health, bake and drain waits)."""
    task_wait: float
    """Median over those workflow tasks of scheduled → started: the server handing it over."""
    task_run: float
    """Median of started → completed: the worker running the workflow code."""
    activity_run: float
    """Median over the activities of started → completed: the worker calling moto or HTTP."""
    slowest_region: dict[str, float]
    """The slowest region's workflow and its own children: the sums of their task waits, task
    runs and activity runs."""
    last_report: float | None
    """The slowest child: its last ``region_progress`` signal initiated → it closed."""
    cpu: dict[str, float] = field(default_factory=dict)
    """Process → CPU seconds used during the deployment (empty without /proc)."""


async def start(
    client: Client,
    stack: LocalStack,
    kind: Kind,
    configs: dict[str, EnvironmentConfig],
    version: str,
) -> WorkflowHandle[Any, Any]:
    """Start ``kind``'s deployment of ``version``, under the ID client.py gives it."""
    service, environment = stack.resources.service, stack.environment
    common: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "version": version,
        "image": f"{service}:{version}",
        "requested_by": BY,
    }
    options: dict[str, Any] = {
        "id": deployment_id(service, environment),
        "task_queue": task_queue(),
        "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
    }
    if kind.parent:
        waves = [[configs[region] for region in kind.regions]]
        return await client.start_workflow(
            MultiRegionDeployment.run, MultiRegionRequest(waves=waves, **common), **options
        )
    request = DeploymentRequest(target=configs[kind.regions[0]], **common)
    return await client.start_workflow(BlueGreenDeployment.run, request, **options)


async def deploy(
    client: Client,
    stack: LocalStack,
    kind: Kind,
    configs: dict[str, EnvironmentConfig],
    version: str,
    number: int,
    cpu: CpuMeter,
) -> Sample:
    """Run one deployment of ``kind``, time it, check every region it covered, read its history."""
    before = {region: read_state(configs[region]).ssm.active_color for region in kind.regions}
    cpu_before = cpu.read()
    started = time.perf_counter()
    handle = await start(client, stack, kind, configs, version)
    try:
        await asyncio.wait_for(handle.result(), DEPLOYMENT_TIMEOUT)
    except WorkflowFailureError as err:
        raise RuntimeError(f"{kind.label}, version {version}: {err.cause or err}") from None
    wall = time.perf_counter() - started
    cpu_after = cpu.read()

    desired = stack.resources.desired_count
    for region in kind.regions:
        state = read_state(configs[region])
        problems = mismatches(state, other_color(before[region]), version, desired)
        if problems:
            raise RuntimeError(f"{kind.label}, version {version}, {region}: {'; '.join(problems)}")

    # The deployment's workflow, then every child, the regions' own children (<id>-health,
    # -bake, -drain: long waits) included.
    histories = await _report.histories(client, handle.id, handle.run_id)
    events = histories[handle.id]
    children = child_times(events) if kind.parent else {}
    tasks = TaskTimes(histories.values())
    # The region whose workflow took longest: the deployment waited for it.
    slowest_id = max(children, key=lambda c: children[c][1] - children[c][0], default=handle.id)
    slowest = TaskTimes(_report.descendants(histories, slowest_id).values())
    sample = Sample(
        round=number,
        kind=kind.key,
        version=version,
        wall=wall,
        workflow=at(events[-1]) - at(events[0]),
        children_started=None,
        child_runs={kind.regions[0]: at(events[-1]) - at(events[0])},
        after_children=None,
        workflow_tasks=len(tasks.task_runs),
        task_wait=statistics.median(tasks.task_waits),
        task_run=statistics.median(tasks.task_runs),
        activity_run=statistics.median(tasks.activity_runs),
        slowest_region={
            "task_waits": sum(slowest.task_waits),
            "task_runs": sum(slowest.task_runs),
            "activity_runs": sum(slowest.activity_runs),
        },
        last_report=None,
        cpu=_report.cpu_used(cpu_before, cpu_after),
    )
    if children:
        child = histories[slowest_id]
        reports = [
            e
            for e in child
            if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
        ]
        sample.last_report = at(child[-1]) - at(reports[-1]) if reports else None
        sample.children_started = max(s for s, _ in children.values()) - at(events[0])
        sample.after_children = at(events[-1]) - max(e for _, e in children.values())
        sample.child_runs = {
            region: children[f"{handle.id}-{region}"][1] - children[f"{handle.id}-{region}"][0]
            for region in kind.regions
        }
    return sample


def child_times(events: Sequence[HistoryEvent]) -> dict[str, tuple[float, float]]:
    """Child workflow ID → (started, closed), from the parent's history: its own children only."""
    started: dict[str, float] = {}
    closed: dict[str, float] = {}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            attributes = e.child_workflow_execution_started_event_attributes
            started[attributes.workflow_execution.workflow_id] = at(e)
        elif e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            done = e.child_workflow_execution_completed_event_attributes
            closed[done.workflow_execution.workflow_id] = at(e)
    return {child: (started[child], closed[child]) for child in started if child in closed}


# --- the whole run --------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the run was measured with."""

    rounds: int
    regions: list[str]
    cpus: int | None
    health_poll: float
    drain_poll: float
    integration_checks: list[str]
    bake: float
    bake_poll: float | None
    server_config: dict[str, Any]


Results = _report.Sampled[Setup, Sample]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Start the local environment in five regions, measure, stop everything."""
    config = STATE_DIR / "bench" / "multi-region" / "deploy.toml"
    with bench_stack(config, say, server_config=args.server_config, regions=DEMO_REGIONS) as stack:
        return measure_on(stack, lambda client: measure(client, stack, args, say), say)


async def measure(
    client: Client, stack: LocalStack, args: argparse.Namespace, say: Callable[[str], None]
) -> Results:
    """The warm-up, then every round; see the module's docstring."""
    configs = {
        region: _report.with_bake(stack.region_config(region), args.bake)
        for region in stack.regions
    }
    first = configs[REGION]
    results = Results(
        setup=Setup(
            rounds=args.rounds,
            regions=list(stack.regions),
            bake=first.bake.duration.total_seconds(),
            bake_poll=first.bake.poll_interval.total_seconds() if args.bake else None,
            **_report.deployment_setup(first, args.server_config),
        ),
    )
    cpu = CpuMeter()
    versions = itertools.count(FIRST_VERSION)
    for number in range(args.rounds + 1):
        # The warm-up (round 0) and odd rounds in the order of KINDS, even rounds reversed.
        order = tuple(reversed(KINDS)) if number and number % 2 == 0 else KINDS
        for kind in order:
            version = str(next(versions))
            sample = await deploy(client, stack, kind, configs, version, number, cpu)
            (results.samples if number else results.warmup).append(sample)
            what = f"round {number}/{args.rounds}" if number else "warm-up (not counted)"
            say(f"{what}: {kind.label}, version {version}: {sample.wall:.3f}s")
        if stack.worker is not None and stack.worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {stack.worker.returncode}")
    return results


# --- output -------------------------------------------------------------------------------------


def of(samples: Sequence[Sample], kind: Kind) -> list[Sample]:
    return [s for s in samples if s.kind == kind.key]


def breakdown(samples: Sequence[Sample]) -> dict[str, dict[str, dict[str, float]]]:
    """Kind → measure → median, min and max over the rounds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        mine = of(samples, kind)
        measures: dict[str, list[float]] = {
            "wall": [s.wall for s in mine],
            "workflow": [s.workflow for s in mine],
            "slowest_child": [max(s.child_runs.values()) for s in mine],
            "workflow_tasks": [float(s.workflow_tasks) for s in mine],
            "task_wait": [s.task_wait for s in mine],
            "task_run": [s.task_run for s in mine],
            "activity_run": [s.activity_run for s in mine],
            **{
                f"slowest_{part}": [s.slowest_region[part] for s in mine]
                for part in ("task_waits", "task_runs", "activity_runs")
            },
        }
        if kind.parent:
            measures["slowest_last_report"] = [s.last_report or 0.0 for s in mine]
            measures["children_started"] = [s.children_started or 0.0 for s in mine]
            measures["after_children"] = [s.after_children or 0.0 for s in mine]
        measures.update(_report.cpu_measures([s.cpu for s in mine], CpuMeter.NAMES.values()))
        out[kind.key] = {name: _report.stats(values) for name, values in measures.items()}
    return out


def summary(results: Results) -> dict[str, Any]:
    """The figures: each kind's measures, and the ratios of the median wall times."""
    figures = breakdown(results.samples)
    wall = {kind.key: figures[kind.key]["wall"]["median"] for kind in KINDS}
    per_round = [
        of(results.samples, FIVE)[i].wall / of(results.samples, ONE)[i].wall
        for i in range(len(of(results.samples, ONE)))
    ]
    return {
        "kinds": figures,
        "ratio": wall[FIVE.key] / wall[ONE.key],
        "ratio_per_round": _report.stats(per_round),
        "ratio_five_to_parent_one": wall[FIVE.key] / wall[PARENT_ONE.key],
        "ratio_parent_one_to_one": wall[PARENT_ONE.key] / wall[ONE.key],
        "aim": AIM,
    }


def as_json(results: Results) -> str:
    """One JSON document: the setup, every sample (the warm-up apart) and the summary."""
    return _report.json_text({**asdict(results), "summary": summary(results)})


def report(results: Results) -> str:
    """The tables and the summary line, for a terminal."""
    s = results.setup
    figures = summary(results)
    kinds = figures["kinds"]
    lines = [
        _report.environment_line("multi-region", s.rounds, s.server_config, s.cpus),
        f"regions: {', '.join(s.regions)}; health and drain polled every {s.health_poll:g}s,"
        f" healthy at the first check; integration check {', '.join(s.integration_checks)};"
        f" {bake_text(s.bake, s.bake_poll)}; no players",
        "",
        "seconds from the start request to the result (order: 1 = one region, p = parent with"
        " one region, 5 = five regions):",
    ]
    by_kind = {kind.key: of(results.samples, kind) for kind in KINDS}
    rows = [
        [
            str(one.round),
            "1,p,5" if one.round % 2 else "5,p,1",
            f"{one.wall:.3f}",
            f"{parent.wall:.3f}",
            f"{five.wall:.3f}",
            f"{five.wall / one.wall:.3f}",
        ]
        for one, parent, five in zip(
            by_kind[ONE.key], by_kind[PARENT_ONE.key], by_kind[FIVE.key], strict=True
        )
    ]
    lines += _report.table(
        ["round", "order", *(kind.label for kind in KINDS), "five / one"],
        _report.with_stats(
            rows,
            [
                None,
                None,
                *([s.wall for s in by_kind[kind.key]] for kind in KINDS),
                [float(r[-1]) for r in rows],
            ],
        ),
    )
    warm = ", ".join(f"{KINDS_BY_KEY[w.kind].label} {w.wall:.3f}" for w in results.warmup)
    lines += ["", f"    warm-up, not counted: {warm}", ""]
    lines.append("where the time went (median seconds; workflow times from the histories):")
    measures = [
        ("wall", "start request → result"),
        ("workflow", "workflow started → closed"),
        ("children_started", "parent started → last child started"),
        ("slowest_child", "the (slowest) region's workflow, started → closed"),
        ("slowest_task_waits", "  its workflow tasks waiting to start (sum)"),
        ("slowest_task_runs", "  its workflow tasks running (sum)"),
        ("slowest_activity_runs", "  its activities running (sum)"),
        ("slowest_last_report", "  its last report to the parent sent → it closed"),
        ("after_children", "last child closed → parent closed"),
        ("workflow_tasks", "workflow tasks (parent and children)"),
        ("task_wait", "a workflow task: scheduled → started (median)"),
        ("task_run", "a workflow task: started → completed (median)"),
        ("activity_run", "an activity: started → completed (median)"),
        *((f"cpu_{n}", f"CPU seconds: {n}") for n in CpuMeter.NAMES.values()),
    ]
    detail_rows = []
    for key, label in measures:
        if not any(key in kinds[kind.key] for kind in KINDS):
            continue
        cells = []
        for kind in KINDS:
            value = kinds[kind.key].get(key)
            if value is None:
                cells.append("-")
            elif key == "workflow_tasks":
                cells.append(f"{value['median']:.0f}")
            else:
                cells.append(f"{value['median']:.3f}")
        detail_rows.append([label, *cells])
    lines += _report.labelled_table(["", *(kind.label for kind in KINDS)], detail_rows)
    if not any(k.startswith("cpu_") for k in kinds[ONE.key]):
        lines.append("  (no CPU figures: /proc is not available here)")
    ratio = figures["ratio"]
    verdict = "within" if ratio <= AIM else "above"
    lines += [
        "",
        f"five regions: median {kinds[FIVE.key]['wall']['median']:.3f} s; one region: median"
        f" {kinds[ONE.key]['wall']['median']:.3f} s; ratio {ratio:.2f}\N{MULTIPLICATION SIGN}"
        f" ({verdict} the aim of {AIM:g}\N{MULTIPLICATION SIGN}); the parent alone"
        f" {figures['ratio_parent_one_to_one']:.2f}\N{MULTIPLICATION SIGN}, five regions over"
        f" the parent with one {figures['ratio_five_to_parent_one']:.2f}\N{MULTIPLICATION SIGN}",
    ]
    return "\n".join(lines)


def bake_text(bake: float, poll: float | None) -> str:
    """What the bake was, for people."""
    return f"a {bake:g}s bake (alarms read every {poll:g}s)" if bake and poll else "no bake"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _report.arguments(
        "python -m bench.multi_region",
        "A five-region deployment next to the same deployment in one region, locally.",
        DEFAULT_ROUNDS,
    )
    parser.add_argument(
        "--bake",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="bake every deployment this long, watching the demo's alarm (default: no bake)",
    )
    _report.add_server_config(parser)
    args = _report.parse(parser, argv)
    if args.bake < 0:
        parser.error("--bake must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every deployment did what it should."""
    return _report.run_benchmark(parse_args(argv), run, as_json, report)


if __name__ == "__main__":
    sys.exit(main())
