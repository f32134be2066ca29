"""Rolling back during the bake vs. redeploying the previous version, side by side.

    python -m bench.rollback [--rounds 5] [--json]

On the local environment in one region (``bench/_harness.py``), each round measures:

- **rollback**: version 2 deployed with a 10-minute bake (the demo's alarm read every second);
  once the ``status`` query says ``baking``, plus a random 0 to 1 s (to land anywhere in the
  alarm-read cycle), the ``rollback`` update is sent. The clock starts just before it and stops
  at the end of the first read of the router's weights (with the worker's own
  ``read_router_weights``, every 5 ms) with all the traffic back on the old color. Also timed:
  the update answered, the workflow ended; its history shows where the time went.
- **redeploy**: what the original pipeline, with neither a bake nor an instant rollback, had to
  do to undo a release: version 1 deployed with no bake (health, the integration check, switch,
  drain, cleanup), from the start request to the result and to all the traffic on it.

Each starts from what a finished deployment leaves (one color active on version 1 with all the
traffic, the other at zero) and is checked afterwards as ``make demo`` checks. Before each, the
last players have left and 3 join the active color (``python -m local.load``: WebSocket
sessions playing 2 s games); told to reconnect at the switch, each finishes its game and leaves,
so every drain waits up to 2 s. All polls are the demo's 1 s.
"""

import asyncio
import itertools
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from activities.traffic import read_router_weights
from bench import _harness, _history
from bench._harness import Benchmark, Figures, Measure, Run, Sample
from cli.deployment_kinds import start
from cli.deployments import Handle, final_status, query_status
from local.load import LoadSettings, load_in_background
from local.stack import LocalStack
from local.state import read_state
from models.activities import RouterInput
from models.colors import Color, other_color
from models.config import EnvironmentConfig
from models.deployment import DeploymentStatus, Phase, State
from models.messages import RollbackRequest
from runtime.connection import task_queue
from workflows.deployment import BlueGreenDeployment

PREVIOUS_VERSION, NEW_VERSION = "1", "2"
LONG_BAKE = timedelta(minutes=10)
"""Long enough that the rollback always lands in the bake."""
PLAYERS = 3
GAME_SECONDS = 2.0
WATCH_INTERVAL = 0.005
"""Seconds between two reads of the router's weights."""
SEED = 7
BY = "bench/rollback.py"
ROLLBACK, REDEPLOY = "rollback", "redeploy"


@asynccontextmanager
async def players_on_the_active_color(
    stack: LocalStack, env: EnvironmentConfig
) -> AsyncIterator[None]:
    """Once the last players have left the active color, ``PLAYERS`` join it on its version
    (``python -m local.load``, real WebSocket sessions) for the block; told to reconnect, each
    finishes its game and leaves."""
    if env.connections is None:
        raise RuntimeError(f"{stack.config_path} has no [connections] section: nothing to drain")
    ssm = read_state(env).ssm
    color, version = ssm.active_color, ssm.versions.get(ssm.active_color) or ""
    deadline = time.monotonic() + GAME_SECONDS + 10
    while await asyncio.to_thread(stack.players_on, env.region, color, version):
        if time.monotonic() > deadline:
            raise TimeoutError(f"players of the last round still on {color}")
        await asyncio.sleep(0.1)
    settings = LoadSettings(
        url=stack.data_plane.players[env.region],
        players=PLAYERS,
        game_seconds=GAME_SECONDS,
        version=version,
        on_notice="leave",
        seconds=600,
    )
    with ExitStack() as players:
        await asyncio.to_thread(
            players.enter_context, load_in_background(settings, "bench-players")
        )
        try:
            yield
        finally:
            await asyncio.to_thread(players.close)


async def traffic_on(env: EnvironmentConfig, color: Color) -> tuple[float, list[float]]:
    """Read the router's weights until ``color`` has all the traffic: ``perf_counter`` at the
    end of that read, and how long each read took."""
    router = RouterInput(region=env.region, router=env.router, blue=env.blue, green=env.green)

    def read() -> tuple[Color | None, float, float]:
        # Timed in the thread: the event loop's own delays do not count.
        began = time.perf_counter()
        serving = read_router_weights(router).serving()
        return serving, began, time.perf_counter()

    reads = []
    while True:
        serving, began, done = await asyncio.to_thread(read)
        reads.append(done - began)
        if serving == color:
            return done, reads
        await asyncio.sleep(WATCH_INTERVAL)


async def wait_for_baking(handle: Handle) -> DeploymentStatus:
    """Ask ``status`` until the deployment bakes; fails if it ends first or takes too long."""
    deadline = time.monotonic() + _harness.TIMEOUT
    while True:
        status = await query_status(handle)
        if status is not None and status.state != State.RUNNING:
            raise RuntimeError(f"{handle.id} ended before baking: {status.state.value}")
        if status is not None and status.phase == Phase.BAKING:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} not baking after {_harness.TIMEOUT:.0f}s")
        await asyncio.sleep(0.02)


def timeline(events: list[HistoryEvent], since: float) -> Figures:
    """Seconds after ``since`` (the clock of this machine) of the rollback's steps: the
    update's workflow task scheduled, started, completed; ``switch_traffic`` started, completed
    (the weights written); the workflow ended."""
    kinds = [e.event_type for e in events]
    accepted = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    found: Figures = {}
    for name, kind in (
        ("update_task_scheduled", EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
        ("update_task_started", EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
        ("update_task_completed", EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    ):
        # The update's workflow task: the last one before the update was accepted.
        found[name] = max(_history.at(e) for e in events[:accepted] if e.event_type == kind)
    switch = next(
        e.event_id
        for e in events[accepted:]
        if e.activity_task_scheduled_event_attributes.activity_type.name == "switch_traffic"
    )
    for e in events:
        if e.activity_task_started_event_attributes.scheduled_event_id == switch:
            found["switch_traffic_started"] = _history.at(e)
        if e.activity_task_completed_event_attributes.scheduled_event_id == switch:
            found["switch_traffic_completed"] = _history.at(e)
    found["workflow_ended"] = _history.at(events[-1])
    return {name: when - since for name, when in found.items()}


async def prepare(run: Run) -> dict[str, Measure]:
    """The two kinds."""
    stack, client = run.local()
    env = stack.environment_config()
    baking = _harness.with_bake(env, LONG_BAKE.total_seconds())
    no_bake = _harness.with_bake(env, 0)
    desired = stack.resources.desired_count
    delays = random.Random(SEED)
    run.setup["players"] = f"{PLAYERS}, each finishing its game of {GAME_SECONDS:g} s when told"
    run.setup["polls"] = (
        f"health, drain and alarms every {env.bake.poll_interval.total_seconds():g} s"
    )

    async def rollback() -> Sample:
        async with players_on_the_active_color(stack, env):
            return await rolled_back()

    async def rolled_back() -> Sample:
        wanted = _harness.request(stack, baking, NEW_VERSION, BY)
        handle = await start(client, wanted, task_queue())
        status = await wait_for_baking(handle)
        new = status.target_color
        if new is None:
            raise RuntimeError(f"{handle.id} bakes, but says no color it deployed to")
        old = other_color(new)
        await asyncio.sleep(delays.uniform(0, env.bake.poll_interval.total_seconds()))
        watch = asyncio.create_task(traffic_on(env, old))
        began, began_at = time.perf_counter(), time.time()
        await handle.execute_update(BlueGreenDeployment.rollback, RollbackRequest(reason=BY, by=BY))
        answered = time.perf_counter() - began
        final = await asyncio.wait_for(final_status(handle), _harness.TIMEOUT)
        ended = time.perf_counter() - began
        seen, reads = await asyncio.wait_for(watch, _harness.TIMEOUT)
        if final.state != State.ROLLED_BACK:
            raise RuntimeError(f"the rollback ended {final.state.value}: {final.report}")
        _harness.check(env, old, PREVIOUS_VERSION, desired, "after the rollback")
        bake = next(e.entered_at for e in final.phases if e.phase == Phase.BAKING)
        events = list((await handle.fetch_history()).events)
        landed = EventType.EVENT_TYPE_TIMER_CANCELED in {e.event_type for e in events}
        figures = {
            "wall": seen - began,
            "traffic": seen - began,
            "answered": answered,
            "ended": ended,
            "into_bake": began_at - bake.timestamp(),
            "weight_read_ms": statistics.median(reads) * 1000,
            **timeline(events, began_at),
        }
        return Sample(figures, f"{new}→{old} (in the {'timer' if landed else 'alarm read'})")

    async def redeploy() -> Sample:
        async with players_on_the_active_color(stack, env):
            return await redeployed()

    async def redeployed() -> Sample:
        new = other_color(read_state(env).ssm.active_color)
        watch = asyncio.create_task(traffic_on(env, new))
        began = time.perf_counter()
        wanted = _harness.request(stack, no_bake, PREVIOUS_VERSION, BY)
        try:
            _, final, figures = await _harness.deploy(client, wanted)
            seen, _ = await asyncio.wait_for(watch, 5)
        finally:
            watch.cancel()
        _harness.check(env, new, PREVIOUS_VERSION, desired, "after redeploying")
        assert isinstance(final, DeploymentStatus)  # a one-region deployment's
        phases = {
            f"phase_{entry.phase.value}": (after.entered_at - entry.entered_at).total_seconds()
            for entry, after in itertools.pairwise(final.phases)
        }
        figures.update(traffic=seen - began, ended=figures["wall"], **phases)
        figures["drain_checks"] = final.connection_checks
        return Sample(figures, f"{other_color(new)}→{new}")

    return {ROLLBACK: rollback, REDEPLOY: redeploy}


BENCHMARK = Benchmark(
    name="rollback",
    about="rolling back during the bake vs. redeploying the previous version",
    kinds=(ROLLBACK, REDEPLOY),
    prepare=prepare,
    game_seconds=GAME_SECONDS,
    labels={
        "wall": "seconds: rollback request → traffic back; redeploy start → result",
        "traffic": "seconds to the first weights read with all traffic on the target color",
        "answered": "the rollback update answered",
        "ended": "the workflow ended",
        "into_bake": "the rollback sent, seconds into the bake",
        "weight_read_ms": "one weights read, ms",
        "update_task_scheduled": "the update's workflow task scheduled (history)",
        "update_task_started": "  … picked up by the worker",
        "update_task_completed": "  … completed: rollback accepted, switch_traffic scheduled",
        "switch_traffic_started": "switch_traffic started on the worker",
        "switch_traffic_completed": "switch_traffic completed (weights written)",
        "workflow_ended": "workflow ended (SSM, scale to 0, SSM version done)",
        **{f"phase_{p.value}": f"in phase {p.value} (workflow clock)" for p in Phase},
        "drain_checks": "drain: connection counts",
        "ratio": "redeploy (start → result) / rollback (request → traffic back)",
        "ratio_traffic": "redeploy / rollback, each to all traffic on the target color",
    },
    ratios={
        "ratio": (REDEPLOY, ROLLBACK, "wall"),
        "ratio_traffic": (REDEPLOY, ROLLBACK, "traffic"),
    },
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
