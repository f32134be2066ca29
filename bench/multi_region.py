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

Reported: the median, min and max wall time of each kind, the ratio of the medians five
regions / one region (the aim is at most 1.3 times), and where the time went, from the workflows'
histories (server clock): the parent's start to its last child's start; the slowest region's
workflow, with the sums of its workflow tasks' waits to be handed to the worker (scheduled →
started) and runs on the worker, of its activities' runs, and the time from its last report to
the parent (signal ``region_progress``) to its end, which it waits for; the last child's end to
the parent's end; how many workflow tasks the deployment took, and the median wait and run of
one. On Linux, the CPU seconds that the worker, the Temporal dev server and moto used during
each deployment (from /proc): everything shares this machine, whose CPU count is printed.

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
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter

from bench._report import rounded, run_benchmark, stats, table, with_stats
from cli.connection import task_queue
from cli.deployments import deployment_id
from local.processes import STATE_DIR, free_port, worker_log
from local.stack import DEMO_REGIONS, REGION, LocalStack, local_stack
from local.state import mismatches, read_state
from models.colors import other_color
from models.config import BakeConfig, EnvironmentConfig
from models.deployment import DeploymentRequest
from models.multi_region import MultiRegionRequest
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


# --- CPU of the local environment's processes ---------------------------------------------------


class CpuMeter:
    """CPU seconds used so far by the worker, the dev server and moto (and their children).

    Read from /proc: on systems without it, ``read`` returns nothing and the report says so.
    """

    NAMES: ClassVar[dict[str, str]] = {
        "worker.py": "worker",
        "start-dev": "Temporal",
        "moto_server": "moto",
    }
    """A word of the process's command line → the name it is reported under."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        children = self._children()
        self._roots: dict[str, int] = {}
        for pid in children.get(os.getpid(), []):
            words = self._cmdline(pid)
            for word, name in self.NAMES.items():
                if any(word in w for w in words):
                    self._roots[name] = pid

    def read(self) -> dict[str, float]:
        """Process name → CPU seconds (user + system) of it and its descendants."""
        children = self._children()
        used: dict[str, float] = {}
        for name, root in self._roots.items():
            pids, total = [root], 0.0
            while pids:
                pid = pids.pop()
                pids += children.get(pid, [])
                total += self._cpu(pid)
            used[name] = total
        return used

    @staticmethod
    def _children() -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        proc = Path("/proc")
        if not proc.is_dir():
            return found
        for entry in proc.iterdir():
            if entry.name.isdigit():
                stat = CpuMeter._stat(int(entry.name))
                if stat:
                    found.setdefault(int(stat[1]), []).append(int(entry.name))
        return found

    @staticmethod
    def _stat(pid: int) -> list[str]:
        """The fields of /proc/PID/stat after the command name (state, ppid, …)."""
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return []

    @staticmethod
    def _cmdline(pid: int) -> list[str]:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            return []

    def _cpu(self, pid: int) -> float:
        stat = self._stat(pid)
        # utime and stime are the 14th and 15th fields of the whole line.
        return (int(stat[11]) + int(stat[12])) / self._tick if len(stat) > 12 else 0.0


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
    """Workflow tasks completed, the parent's and every child's."""
    task_wait: float
    """Median over those workflow tasks of scheduled → started: the server handing it over."""
    task_run: float
    """Median of started → completed: the worker running the workflow code."""
    activity_run: float
    """Median over the activities of started → completed: the worker calling moto or HTTP."""
    slowest_region: dict[str, float]
    """The slowest region's workflow: the sums of its task waits, task runs and activity runs."""
    last_report: float | None
    """The slowest child: its last ``region_progress`` signal initiated → it closed."""
    cpu: dict[str, float] = field(default_factory=dict)
    """Process → CPU seconds used during the deployment (empty without /proc)."""


def with_bake(env: EnvironmentConfig, seconds: float) -> EnvironmentConfig:
    """``env`` with a bake of ``seconds`` watching its alarms; none at all (nor alarms) for 0."""
    bake = (
        env.bake.model_copy(update={"duration": timedelta(seconds=seconds)})
        if seconds
        else BakeConfig(duration=timedelta(0))
    )
    return env.model_copy(update={"bake": bake})


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

    events = list((await handle.fetch_history()).events)
    children = child_times(events) if kind.parent else {}
    histories = {handle.id: events}
    for child_id in children:
        fetched = await client.get_workflow_handle(child_id).fetch_history()
        histories[child_id] = list(fetched.events)
    tasks = TaskTimes()
    for recorded in histories.values():
        tasks.add(recorded)
    # The region whose workflow took longest: the deployment waited for it.
    slowest_id = max(children, key=lambda c: children[c][1] - children[c][0], default=handle.id)
    slowest = TaskTimes()
    slowest.add(histories[slowest_id])
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
        cpu={name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after},
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


def at(event: HistoryEvent) -> float:
    """When the server recorded ``event``, in seconds since the epoch."""
    return event.event_time.ToNanoseconds() / 1e9


class TaskTimes:
    """How long workflow tasks waited and ran, and activities ran, over several histories."""

    def __init__(self) -> None:
        self.task_waits: list[float] = []
        self.task_runs: list[float] = []
        self.activity_runs: list[float] = []

    def add(self, events: Sequence[HistoryEvent]) -> None:
        """Pair each started event with its scheduled one, each completed with its started."""
        when = {e.event_id: at(e) for e in events}
        for e in events:
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                scheduled = e.workflow_task_started_event_attributes.scheduled_event_id
                self.task_waits.append(at(e) - when[scheduled])
            elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                started = e.workflow_task_completed_event_attributes.started_event_id
                self.task_runs.append(at(e) - when[started])
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                started = e.activity_task_completed_event_attributes.started_event_id
                self.activity_runs.append(at(e) - when[started])


def child_times(events: Sequence[HistoryEvent]) -> dict[str, tuple[float, float]]:
    """Child workflow ID → (started, closed), from the parent's history."""
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


@dataclass
class Results:
    setup: Setup
    warmup: list[Sample]
    samples: list[Sample]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Start the local environment in five regions, measure, stop everything."""
    with local_stack(
        ui=False,
        temporal_port=free_port(),
        ui_port=None,
        config_path=STATE_DIR / "bench" / "multi-region" / "deploy.toml",
        players=0,
        regions=DEMO_REGIONS,
        dynamic_config=args.server_config,
        say=say,
    ) as stack:
        try:
            return asyncio.run(measure(stack, args, say))
        except BaseException:
            say(f"worker log: {worker_log(stack.temporal_address)}")
            raise


async def measure(
    stack: LocalStack, args: argparse.Namespace, say: Callable[[str], None]
) -> Results:
    """The warm-up, then every round; see the module's docstring."""
    client = await Client.connect(
        stack.temporal_address, namespace="default", data_converter=pydantic_data_converter
    )
    configs = {
        region: with_bake(stack.region_config(region), args.bake) for region in stack.regions
    }
    first = configs[REGION]
    results = Results(
        setup=Setup(
            rounds=args.rounds,
            regions=list(stack.regions),
            cpus=os.cpu_count(),
            health_poll=first.health.poll_interval.total_seconds(),
            drain_poll=first.drain.poll_interval.total_seconds(),
            integration_checks=[check.url for check in first.integration_checks],
            bake=first.bake.duration.total_seconds(),
            bake_poll=first.bake.poll_interval.total_seconds() if args.bake else None,
            server_config=dict(args.server_config),
        ),
        warmup=[],
        samples=[],
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
        for name in CpuMeter.NAMES.values():
            if all(name in s.cpu for s in mine):
                measures[f"cpu_{name}"] = [s.cpu[name] for s in mine]
        out[kind.key] = {name: stats(values) for name, values in measures.items()}
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
        "ratio_per_round": stats(per_round),
        "ratio_five_to_parent_one": wall[FIVE.key] / wall[PARENT_ONE.key],
        "ratio_parent_one_to_one": wall[PARENT_ONE.key] / wall[ONE.key],
        "aim": AIM,
    }


def as_json(results: Results) -> str:
    """One JSON document: the setup, every sample (the warm-up apart) and the summary."""
    document = {
        "setup": asdict(results.setup),
        "warmup": [asdict(s) for s in results.warmup],
        "samples": [asdict(s) for s in results.samples],
        "summary": summary(results),
    }
    return json.dumps(rounded(document), indent=2)


def report(results: Results) -> str:
    """The tables and the summary line, for a terminal."""
    s = results.setup
    figures = summary(results)
    kinds = figures["kinds"]
    server = ", ".join(f"{k}={v}" for k, v in s.server_config.items()) or "its defaults"
    lines = [
        f"multi-region benchmark: {s.rounds} rounds on the local environment (Temporal dev server"
        f" with {server}, moto, one worker; {s.cpus} CPUs shared by all of them)",
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
    lines += table(
        ["round", "order", *(kind.label for kind in KINDS), "five / one"],
        with_stats(
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
    # Labels to the left: padded to one width, right-aligning them changes nothing.
    width = max(len(row[0]) for row in detail_rows)
    detail_rows = [[row[0].ljust(width), *row[1:]] for row in detail_rows]
    lines += ["  " + line for line in table(["", *(kind.label for kind in KINDS)], detail_rows)]
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


def server_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (KEY, VALUE as JSON where it parses, else the string)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multi_region",
        description="A five-region deployment next to the same deployment in one region, locally.",
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--bake",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="bake every deployment this long, watching the demo's alarm (default: no bake)",
    )
    parser.add_argument(
        "--server-config",
        type=server_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dynamic config for the Temporal dev server (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.bake < 0:
        parser.error("--bake must not be negative")
    args.server_config = dict(args.server_config)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every deployment did what it should."""
    return run_benchmark(parse_args(argv), run, as_json, report)


if __name__ == "__main__":
    sys.exit(main())
