"""Rolling back during the bake vs. redeploying the previous version, side by side, on this machine.

    python -m bench.rollback [--rounds 5] [--json]

Starts the local environment (``local.stack.local_stack``: Temporal's dev server, moto as AWS,
a sample game server per color, a worker) and, in each round, measures:

(a) **Rollback during the bake.** Version 2 is deployed to the inactive color with a 10-minute
    bake (the demo's 5xx alarm checked every second), so the rollback always lands in the bake.
    Once the ``status`` query says ``baking``, plus a random 0 to 1 s (so the request lands anywhere
    in the alarm-check cycle: during the alarm read or during the timer), the ``rollback``
    update is sent. The clock starts just before ``execute_update`` is called. A thread reads
    the ALB listener's weights from moto with boto3 in a tight loop (every 5 ms) and stops the
    clock at the end of the first read that shows 100/0 on the old color. Also timed: when the
    update was answered, and when the workflow had ended (rolled back: traffic, SSM active
    color, new color scaled to 0, its SSM version restored). The workflow's history then shows
    where the time went (update's workflow task, the ``switch_traffic`` activity).

(b) **Redeploying the previous version**: what the original pipeline, which had neither a bake
    nor an instant rollback, had to do to undo a release. Version 1 is deployed with no bake:
    to the inactive color, health, the integration check, switch, drain, cleanup. The clock
    starts just before the workflow is started and stops when its result arrives; the same
    weight-reading thread times when the new color has all the traffic.

After each of them the benchmark checks the outcome (rolled back / succeeded) and the state of
SSM, the router and both ECS services, as ``make demo`` does; a round that did not do what it
should fails the run.

Why this sequence is fair and keeps the rounds independent: after (a) one color is active on
version 1 and the other is at zero, which is what a finished deployment leaves. (b) deploys
version 1 over that: the steps, the waits and the AWS calls are exactly those of deploying
version 1 over an active version 2 (the version label changes nothing for moto or the
workflow, and in both cases the task definition revision of ``game:1`` exists already), so (b)
needs no extra deployment of version 2 before it. After (b) the other color is active on
version 1 and the first one is at zero: the next round starts from the same state, colors
swapped. Before every deployment the previous players have left the active color and
``--players`` (3) join it on its version; told to reconnect at the switch, each finishes a
game of 0.5 to ``--game-seconds`` (2) more seconds and leaves, so every (b) drain waits for the
same thing, checked every second as in the demo. All polls (health, drain, alarms) are the
demo's 1 s.

Numbers in seconds; the output says what was measured. ``--json`` prints one JSON document on
stdout instead of the tables (progress goes to stderr either way).
"""

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench import _report
from bench._report import stats, table, with_stats
from bench._stack import bench_stack, deployment_request, measure_on
from cli.deployment_kinds import start
from cli.deployments import Handle, final_status, query_status
from local.aws_resources import DemoResources
from local.processes import STATE_DIR
from local.stack import LocalStack
from local.state import mismatches, read_state
from models.colors import COLORS, Color, other_color
from models.config import BakeConfig, EnvironmentConfig, expand_url
from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from models.durations import format_duration
from models.messages import RollbackRequest
from runtime.connection import task_queue
from workflows.deployment import BlueGreenDeployment

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

PREVIOUS_VERSION = "1"
NEW_VERSION = "2"
LONG_BAKE = timedelta(minutes=10)
"""Long enough that the rollback always lands in the bake."""
DEFAULT_ROUNDS = 5
DEFAULT_PLAYERS = 3
DEFAULT_GAME_SECONDS = 2.0
DEFAULT_WATCH_INTERVAL = 0.005
STATUS_POLL = 0.02
"""How often the ``status`` query is asked while waiting for the bake."""
DEPLOYMENT_TIMEOUT = 180.0
"""Seconds any one deployment may take before the benchmark gives up."""
SEED = 7
BY = "bench/rollback.py"


# --- reading the router's weights, as fast as moto answers ------------------------------------


class WeightWatcher:
    """Reads the listener's weights with boto3 in a thread until ``color`` has 100 and the other 0.

    ``seen_at`` is ``time.perf_counter()`` at the end of the first read that showed it. The
    thread starts on entering the ``with`` block, which returns after the first read.
    """

    def __init__(self, resources: DemoResources, color: Color, interval: float) -> None:
        # Created here, used in the thread: boto3 clients are thread-safe, sessions are not.
        self._elbv2: ElasticLoadBalancingv2Client = boto3.client(
            "elbv2", region_name=resources.region
        )
        self._listener_arn = resources.listener_arn
        self._target_groups = resources.target_group_arns
        self._wanted = {color: 100, other_color(color): 0}
        self._interval = interval
        self.seen_at: float | None = None
        self.first_read: dict[Color, int] | None = None
        self.latencies: list[float] = []
        self._error: BaseException | None = None
        self._started = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="weights", daemon=True)

    def __enter__(self) -> "WeightWatcher":
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise RuntimeError(f"reading the listener's weights: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def weights(self) -> dict[Color, int]:
        """The listener's default action's weights of the two colors' target groups."""
        listener = self._elbv2.describe_listeners(ListenerArns=[self._listener_arn])["Listeners"]
        found: dict[str, int] = {}
        for action in listener[0].get("DefaultActions", []):
            for group in action.get("ForwardConfig", {}).get("TargetGroups", []):
                found[group.get("TargetGroupArn", "")] = group.get("Weight", 1)
        return {color: found.get(self._target_groups[color], 0) for color in COLORS}

    def wait(self, timeout: float) -> float:
        """Block until the wanted weights were seen; their ``seen_at``."""
        self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError(f"reading the listener's weights: {self._error}")
        if self.seen_at is None:
            raise TimeoutError(f"the weights were not {self._wanted} after {timeout:.0f}s")
        return self.seen_at

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                before = time.perf_counter()
                weights = self.weights()
                after = time.perf_counter()
                self.latencies.append(after - before)
                if self.first_read is None:
                    self.first_read = weights
                    self._started.set()
                if weights == self._wanted:
                    self.seen_at = after
                    return
                self._stop.wait(self._interval)
        except BaseException as err:  # reported by wait() and __enter__
            self._error = err
        finally:
            self._started.set()


# --- the players on the sample game service -----------------------------------------------------


def players_on(url: str, version_header: str, version: str) -> int:
    """How many players the game server at ``url`` counts on ``version`` (the drain's question)."""
    request = urllib.request.Request(url, headers={version_header: version})
    with urllib.request.urlopen(request, timeout=5) as answer:
        count: int = json.loads(answer.read())["connections"]
        return count


def seat_players(stack: LocalStack, env: EnvironmentConfig, players: int, wait: float) -> None:
    """Once the previous players have left the active color, ``players`` join it on its version."""
    if env.connections is None:
        raise RuntimeError(f"{stack.config_path} has no [connections] section: nothing to drain")
    state = read_state(env).ssm
    color, version = state.active_color, state.versions.get(state.active_color) or ""
    base = stack.resources.urls[color]
    count_url = expand_url(env.connections.url, base)
    header = env.connections.version_header
    deadline = time.monotonic() + wait
    while players_on(count_url, header, version):
        if time.monotonic() > deadline:
            raise TimeoutError(f"players from the last round still on {color} after {wait:.0f}s")
        time.sleep(0.1)
    for _ in range(players):
        join = urllib.request.Request(
            f"{base}/players", method="POST", headers={header: version}, data=b""
        )
        with urllib.request.urlopen(join, timeout=5):
            pass


# --- one round ----------------------------------------------------------------------------------


@dataclass
class RollbackSample:
    """(a) One rollback during the bake; seconds after the rollback request."""

    round: int
    old_color: Color
    new_color: Color
    sent_into_bake: float
    """When the request was sent, counted from the bake's start as the workflow saw it."""
    landed_in: str
    """What the bake was doing when the update arrived: "alarm read" (an activity) or "timer"."""
    update_answered: float
    traffic_back: float
    """The first weight read showing 100/0 on the old color had ended."""
    workflow_ended: float
    weight_reads: int
    weight_read_ms: float
    """The median time one weight read took: the resolution of ``traffic_back``."""
    timeline: dict[str, float] = field(default_factory=dict)
    """From the workflow's history: when each step after the request happened."""


@dataclass
class RedeploySample:
    """(b) One deployment of the previous version with no bake; seconds after the start request."""

    round: int
    old_color: Color
    new_color: Color
    traffic_on_new: float
    workflow_ended: float
    drain: float
    """Time in the draining phase (the workflow's clock)."""
    drain_checks: int
    weight_reads: int
    phases: dict[str, float] = field(default_factory=dict)
    """Time in each phase (the workflow's clock), in order."""


def request(stack: LocalStack, env: EnvironmentConfig, version: str) -> DeploymentRequest:
    """A deployment of ``version`` (image game:VERSION) to the stack's environment."""
    return deployment_request(stack.resources.service, stack.environment, env, version, BY)


async def wait_for_phase(handle: Handle, phase: Phase, timeout: float) -> DeploymentStatus:
    """Ask ``status`` until the deployment is in ``phase``; fails if it ends or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        status = await query_status(handle)
        if status is not None and status.phase == phase and status.state == State.RUNNING:
            return status
        if status is not None and status.state != State.RUNNING:
            reason = status.report.reason if status.report else status.state.value
            raise RuntimeError(f"{handle.id} ended before {phase.value}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} not {phase.value} after {timeout:.0f}s")
        await asyncio.sleep(STATUS_POLL)


async def rollback_during_bake(
    client: Client,
    stack: LocalStack,
    env: EnvironmentConfig,
    number: int,
    delay: float,
    watch_interval: float,
) -> RollbackSample:
    """Deploy the new version with a long bake, roll back in the bake, time it (see (a) above)."""
    handle = await start(client, request(stack, env, NEW_VERSION), task_queue())
    baking = await wait_for_phase(handle, Phase.BAKING, DEPLOYMENT_TIMEOUT)
    old, new = baking.active_color_before, baking.target_color
    assert old is not None and new is not None
    await asyncio.sleep(delay)
    with WeightWatcher(stack.resources, old, watch_interval) as watcher:
        if watcher.first_read != {new: 100, old: 0}:
            raise RuntimeError(
                f"baking, but the weights are {watcher.first_read}, not all on {new}"
            )
        started = time.perf_counter()
        started_wall = time.time()
        await handle.execute_update(
            BlueGreenDeployment.rollback,
            RollbackRequest(reason=f"benchmark round {number}", by=BY),
        )
        answered = time.perf_counter()
        final = await asyncio.wait_for(final_status(handle), DEPLOYMENT_TIMEOUT)
        ended = time.perf_counter()
        seen = await asyncio.to_thread(watcher.wait, DEPLOYMENT_TIMEOUT)
    if final.state != State.ROLLED_BACK:
        raise RuntimeError(
            f"round {number}: the rollback ended {final.state.value}: {final.report}"
        )
    check_restored(stack, env, old, f"round {number}, after the rollback")
    bake_start = next(e.entered_at for e in final.phases if e.phase == Phase.BAKING)
    into_bake = started_wall - bake_start.timestamp()
    history = await handle.fetch_history()
    return RollbackSample(
        round=number,
        old_color=old,
        new_color=new,
        sent_into_bake=into_bake,
        landed_in=landed_in(history.events),
        update_answered=answered - started,
        traffic_back=seen - started,
        workflow_ended=ended - started,
        weight_reads=len(watcher.latencies),
        weight_read_ms=statistics.median(watcher.latencies) * 1000,
        timeline=rollback_timeline(history.events, started_wall),
    )


async def redeploy_previous_version(
    client: Client, stack: LocalStack, env: EnvironmentConfig, number: int, watch_interval: float
) -> RedeploySample:
    """Deploy the previous version, no bake, start to end (see (b) above)."""
    state = read_state(env).ssm
    old = state.active_color
    new = other_color(old)
    with WeightWatcher(stack.resources, new, watch_interval) as watcher:
        started = time.perf_counter()
        handle = await start(client, request(stack, env, PREVIOUS_VERSION), task_queue())
        final = await asyncio.wait_for(final_status(handle), DEPLOYMENT_TIMEOUT)
        ended = time.perf_counter()
        seen = await asyncio.to_thread(watcher.wait, 5)
    if final.state != State.SUCCEEDED:
        raise RuntimeError(f"round {number}: redeploying ended {final.state.value}: {final.report}")
    check_restored(stack, env, new, f"round {number}, after redeploying")
    phases = phase_durations(final)
    return RedeploySample(
        round=number,
        old_color=old,
        new_color=new,
        traffic_on_new=seen - started,
        workflow_ended=ended - started,
        drain=phases.get(Phase.DRAINING.value, 0.0),
        drain_checks=final.connection_checks,
        weight_reads=len(watcher.latencies),
        phases=phases,
    )


def check_restored(stack: LocalStack, env: EnvironmentConfig, active: Color, when: str) -> None:
    """Fail unless ``active`` serves the previous version with all the traffic, the other at 0."""
    problems = mismatches(read_state(env), active, PREVIOUS_VERSION, stack.resources.desired_count)
    if problems:
        raise RuntimeError(f"{when}: {'; '.join(problems)}")


def phase_durations(status: DeploymentStatus) -> dict[str, float]:
    """Seconds from entering each phase to entering the next (workflow time: task start times)."""
    entries = status.phases
    return {
        entry.phase.value: (following.entered_at - entry.entered_at).total_seconds()
        for entry, following in itertools.pairwise(entries)
    }


# --- where the rollback's time goes: the workflow's history ---------------------------------------

TIMELINE_STEPS = {
    "update_task_scheduled": "the update's workflow task scheduled",
    "update_task_started": "  … picked up by the worker",
    "update_task_completed": "  … completed: update accepted, switch_traffic scheduled",
    "switch_traffic_started": "switch_traffic started on the worker",
    "switch_traffic_completed": "switch_traffic completed (weights written)",
    "workflow_ended": "workflow ended (SSM, scale to 0, SSM version done)",
}


def landed_in(events: Sequence[HistoryEvent]) -> str:
    """What the rollback interrupted: the alarm read it cancelled, or the timer it cancelled."""
    kinds = {e.event_type for e in events}
    if EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED in kinds:
        return "alarm read"
    if EventType.EVENT_TYPE_TIMER_CANCELED in kinds:
        return "timer"
    return "?"


def rollback_timeline(events: Sequence[HistoryEvent], since: float) -> dict[str, float]:
    """Seconds after ``since`` (wall clock) of the steps in TIMELINE_STEPS, read from history."""

    def at(event: HistoryEvent) -> float:
        return _report.at(event) - since

    out: dict[str, float] = {}
    accepted = next(
        (
            i
            for i, e in enumerate(events)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ),
        None,
    )
    if accepted is None:
        return out
    # The update's workflow task: the last scheduled/started/completed before the acceptance.
    for name, kind in (
        ("update_task_scheduled", EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
        ("update_task_started", EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
        ("update_task_completed", EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    ):
        found = [e for e in events[:accepted] if e.event_type == kind]
        if found:
            out[name] = at(found[-1])
    scheduled = next(
        (
            e
            for e in events[accepted:]
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == "switch_traffic"
        ),
        None,
    )
    if scheduled is not None:
        out["switch_traffic_scheduled"] = at(scheduled)
        for e in events:
            if (
                e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and e.activity_task_started_event_attributes.scheduled_event_id
                == scheduled.event_id
            ):
                out["switch_traffic_started"] = at(e)
            if (
                e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                and e.activity_task_completed_event_attributes.scheduled_event_id
                == scheduled.event_id
            ):
                out["switch_traffic_completed"] = at(e)
    out["workflow_ended"] = at(events[-1])
    return out


# --- the whole run --------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the run was measured with."""

    rounds: int
    players: int
    game_seconds: float
    health_poll: float
    drain_poll: float
    bake_a: str
    bake_poll: float
    alarms: list[str]
    watch_interval_ms: float


@dataclass
class Results:
    setup: Setup
    rollbacks: list[RollbackSample]
    redeploys: list[RedeploySample]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Start the local environment, measure ``args.rounds`` rounds, stop everything."""
    # No players at the start: seat_players seats them before each deployment.
    config = STATE_DIR / "bench" / "deploy.toml"
    with bench_stack(config, say, game_seconds=args.game_seconds) as stack:
        return measure_on(stack, lambda client: measure(client, stack, args, say), say)


async def measure(
    client: Client, stack: LocalStack, args: argparse.Namespace, say: Callable[[str], None]
) -> Results:
    """Every round of (a) then (b); see the module's docstring."""
    env = stack.environment_config()
    # (a): the demo's config with a long bake; (b): the same with none, as the original had.
    baking = env.model_copy(
        update={
            "bake": BakeConfig(
                duration=LONG_BAKE, poll_interval=env.bake.poll_interval, alarms=env.bake.alarms
            )
        }
    )
    no_bake = env.model_copy(update={"bake": BakeConfig(duration=timedelta(0))})
    setup = Setup(
        rounds=args.rounds,
        players=args.players,
        game_seconds=args.game_seconds,
        health_poll=env.health.poll_interval.total_seconds(),
        drain_poll=env.drain.poll_interval.total_seconds(),
        bake_a=format_duration(LONG_BAKE),
        bake_poll=env.bake.poll_interval.total_seconds(),
        alarms=list(env.bake.alarms),
        watch_interval_ms=args.watch_interval * 1000,
    )
    rng = random.Random(SEED)
    results = Results(setup, [], [])
    leave = args.game_seconds + 10
    for number in range(1, args.rounds + 1):
        await asyncio.to_thread(seat_players, stack, env, args.players, leave)
        delay = rng.uniform(0, setup.bake_poll)
        a = await rollback_during_bake(client, stack, baking, number, delay, args.watch_interval)
        results.rollbacks.append(a)
        say(
            f"round {number}/{args.rounds} (a): rollback {a.sent_into_bake:.2f}s into the bake;"
            f" traffic back on {a.old_color} after {a.traffic_back:.3f}s,"
            f" workflow ended after {a.workflow_ended:.3f}s"
        )
        await asyncio.to_thread(seat_players, stack, env, args.players, leave)
        b = await redeploy_previous_version(client, stack, no_bake, number, args.watch_interval)
        results.redeploys.append(b)
        say(
            f"round {number}/{args.rounds} (b): version {PREVIOUS_VERSION} to {b.new_color};"
            f" traffic on {b.new_color} after {b.traffic_on_new:.2f}s,"
            f" workflow ended after {b.workflow_ended:.2f}s (drain {b.drain:.1f}s)"
        )
        if stack.worker is not None and stack.worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {stack.worker.returncode}")
    return results


# --- output -------------------------------------------------------------------------------------


def summary(results: Results) -> dict[str, Any]:
    """The figures: medians, minima and maxima of each measure, and the ratio (b)/(a)."""
    a, b = results.rollbacks, results.redeploys
    timeline_keys = [k for k in TIMELINE_STEPS if all(k in s.timeline for s in a)]
    phase_names = [p for p in b[0].phases if all(p in s.phases for s in b)]
    a_traffic = statistics.median(s.traffic_back for s in a)
    b_end = statistics.median(s.workflow_ended for s in b)
    return {
        "rollback_during_bake": {
            "update_answered": stats([s.update_answered for s in a]),
            "traffic_back": stats([s.traffic_back for s in a]),
            "workflow_ended": stats([s.workflow_ended for s in a]),
            "weight_read_ms": stats([s.weight_read_ms for s in a]),
            "timeline": {k: stats([s.timeline[k] for s in a]) for k in timeline_keys},
        },
        "redeploy_previous_version": {
            "traffic_on_new": stats([s.traffic_on_new for s in b]),
            "workflow_ended": stats([s.workflow_ended for s in b]),
            "drain": stats([s.drain for s in b]),
            "drain_checks": stats([float(s.drain_checks) for s in b]),
            "phases": {p: stats([s.phases[p] for s in b]) for p in phase_names},
        },
        "ratio": b_end / a_traffic,
        "ratio_traffic": statistics.median(s.traffic_on_new for s in b) / a_traffic,
    }


def as_json(results: Results) -> str:
    """One JSON document: the setup, every sample and the summary (seconds, to the microsecond)."""
    document = {
        "setup": results.setup,
        "rollback_during_bake": results.rollbacks,
        "redeploy_previous_version": results.redeploys,
        "summary": summary(results),
    }
    return _report.json_text(document)


def report(results: Results) -> str:
    """The tables and the summary line, for a terminal."""
    s, a, b = results.setup, results.rollbacks, results.redeploys
    figures = summary(results)
    lines = [
        f"rollback benchmark: {s.rounds} rounds on the local environment (Temporal dev server,"
        f" moto, one worker); health, drain and alarm polls every {s.health_poll:g}s;"
        f" weights read from moto every {s.watch_interval_ms:g} ms"
        f" (one read: median {figures['rollback_during_bake']['weight_read_ms']['median']:.1f} ms)",
        "",
        f"(a) rollback during the bake ({s.bake_a} bake, alarm {', '.join(s.alarms)} polled every"
        f" {s.bake_poll:g}s), seconds from the rollback request:",
    ]
    a_rows = [
        [
            str(x.round),
            f"{x.new_color}→{x.old_color}",
            f"{x.sent_into_bake:.3f}",
            x.landed_in,
            f"{x.update_answered:.3f}",
            f"{x.traffic_back:.3f}",
            f"{x.workflow_ended:.3f}",
        ]
        for x in a
    ]
    lines += table(
        [
            "round",
            "back to",
            "into bake",
            "landed in",
            "update answered",
            "traffic back 100/0",
            "workflow ended",
        ],
        with_stats(
            a_rows,
            [
                None,
                None,
                [x.sent_into_bake for x in a],
                None,
                [x.update_answered for x in a],
                [x.traffic_back for x in a],
                [x.workflow_ended for x in a],
            ],
        ),
    )
    timeline = figures["rollback_during_bake"]["timeline"]
    if timeline:
        lines += [
            "",
            "    where (a)'s time goes, from the workflow history (median s after the request):",
        ]
        lines += [f"      {TIMELINE_STEPS[k]:<58} {v['median']:.3f}" for k, v in timeline.items()]
        lines.append(
            f"      {'weights read back on the old color (the thread above)':<58}"
            f" {figures['rollback_during_bake']['traffic_back']['median']:.3f}"
        )
    drain = figures["redeploy_previous_version"]["drain"]
    lines += [
        "",
        f"(b) redeploying the previous version (version {PREVIOUS_VERSION}, no bake: deploy,"
        f" health, check, switch, drain, cleanup), seconds from the start request:",
    ]
    b_rows = [
        [
            str(x.round),
            f"{x.old_color}→{x.new_color}",
            f"{x.traffic_on_new:.3f}",
            f"{x.workflow_ended:.3f}",
            f"{x.drain:.3f}",
            str(x.drain_checks),
        ]
        for x in b
    ]
    lines += table(
        ["round", "to", "traffic on new 100/0", "workflow ended", "of which drain", "drain checks"],
        with_stats(
            b_rows,
            [
                None,
                None,
                [x.traffic_on_new for x in b],
                [x.workflow_ended for x in b],
                [x.drain for x in b],
                [float(x.drain_checks) for x in b],
            ],
        ),
    )
    phases = figures["redeploy_previous_version"]["phases"]
    back = figures["rollback_during_bake"]["traffic_back"]["median"]
    redeploy = figures["redeploy_previous_version"]["workflow_ended"]["median"]
    on_new = figures["redeploy_previous_version"]["traffic_on_new"]["median"]
    lines += [
        "",
        "    median time per phase (workflow clock): "
        + ", ".join(f"{p} {v['median']:.2f}" for p, v in phases.items()),
        f"    the drain waited for {s.players} players on the old color, told to reconnect at the"
        f" switch, each finishing a game of 0.5 to {s.game_seconds:g} s; connections counted every"
        f" {s.drain_poll:g}s (median {drain['median']:.2f}s in draining)",
        f"    traffic was on the previous version {on_new:.3f} s into (b), median"
        f" ({figures['ratio_traffic']:.0f}\N{MULTIPLICATION SIGN} (a)): moto reports the new"
        " color healthy at its first check; on AWS that wait is ECS starting tasks and the ALB's"
        " health checks",
        "",
        f"rollback during bake: median {back:.3f} s to traffic back on the old color;"
        f" redeploying the previous version: median {redeploy:.1f} s;"
        f" ratio {figures['ratio']:.0f}\N{MULTIPLICATION SIGN}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _report.arguments(
        "python -m bench.rollback",
        "Rollback during the bake vs. redeploying the previous version, locally.",
        DEFAULT_ROUNDS,
    )
    parser.add_argument(
        "--players",
        type=int,
        default=DEFAULT_PLAYERS,
        help="players on the old color at each switch (default: %(default)s)",
    )
    parser.add_argument(
        "--game-seconds",
        type=float,
        default=DEFAULT_GAME_SECONDS,
        help="longest rest of a game after the reconnect notice (default: %(default)s)",
    )
    parser.add_argument(
        "--watch-interval",
        type=float,
        default=DEFAULT_WATCH_INTERVAL,
        help="seconds between two reads of the weights (default: %(default)s)",
    )
    args = _report.parse(parser, argv)
    if args.players < 0 or args.game_seconds <= 0 or args.watch_interval < 0:
        parser.error("--players, --game-seconds and --watch-interval must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every round did what it should."""
    return _report.run_benchmark(parse_args(argv), run, as_json, report)


if __name__ == "__main__":
    sys.exit(main())
