"""Seeded chaos deployments run in batches, several at once behind one worker, each batch on a
time-skipping server of its own: what the invariants modules share.

A module says what it deploys (a ``Deployments``: how a seed's run starts and how its end is
read); ``run_seeds_apart`` deals the selected seeds out to groups that run at once, each group's
batches one after another (``run_seeds``), and returns each seed's ``Run``. One unlock of the
clock serves a whole batch. A run still going when its batch stops moving (no
activity called, no run ended for ``IDLE_LIMIT_SECONDS``) or after ``BATCH_LIMIT_SECONDS`` is
terminated and described instead, so that one hung deployment fails its own seed and not the
whole batch. A batch whose clock stopped because one run got stuck (see
``ChaosAws.failing_workflow_tasks_terminated``) keeps that run's result; its other unfinished
runs go again in the next batch, up to ``RERUNS`` times; so do the unfinished runs of a batch in
which nothing moved at all.
"""

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pytest
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.reliability.chaos_aws import ChaosAws, ChaosRun
from tests.workflows.conftest import time_skipping_server
from tests.workflows.driving import running_worker

ScheduleT = TypeVar("ScheduleT")
EndT = TypeVar("EndT")

BATCH_LIMIT_SECONDS = 100.0
IDLE_LIMIT_SECONDS = 20.0
"""A batch in which no activity was called and no run ended for this long is stuck: more than a
message may hold the clock (``_HOLD_LIMIT_SECONDS`` in chaos_aws.py), while a busy machine only
makes a batch slower."""
SETTLE_SECONDS = 10.0
"""How long reading a terminated run's end may take."""
IDLE = f"nothing in its batch moved for {IDLE_LIMIT_SECONDS:.0f} s"
STALL_GRACE_SECONDS = 3.0
"""Once a run is stuck, how long the rest of its batch may still finish before it is stopped."""
RERUNS = 3


class Deployments(ABC, Generic[ScheduleT, EndT]):
    """What a module deploys under chaos: a seed's schedule, how its run starts and ends."""

    @abstractmethod
    def schedule(self, seed: int) -> ScheduleT:
        """Everything random about the seed's run."""

    @abstractmethod
    async def start(
        self, client: Client, aws: ChaosAws, task_queue: str, schedule: ScheduleT
    ) -> ChaosRun:
        """Add the run's worlds to ``aws`` and start its workflow on ``task_queue``."""

    @abstractmethod
    async def end(self, client: Client, run: ChaosRun) -> EndT:
        """How the run ended, once it has (awaiting its result); raises when its workflow did
        not end as a deployment does."""

    @abstractmethod
    async def where(self, client: Client, run: ChaosRun) -> str:
        """Where a run that did not end stands (its state and phase), for the failure message."""


@dataclass
class Run(Generic[ScheduleT, EndT]):
    """One seed's deployment: its schedule, the worlds it left and how it ended."""

    schedule: ScheduleT
    chaos: ChaosRun
    end: EndT | None
    error: str | None
    """Why there is no end: the workflow failed unexpectedly, or did not end in time."""
    stalled_by_another: bool = False
    """Did not end because the clock stopped, for another run of its batch or for none: not
    judged, re-run."""

    def violations(self) -> list[str]:
        """What the worlds saw break while the run went: invariants (a), (b), liveness."""
        worlds = self.chaos.worlds.values()
        return self.chaos.violations + [v for world in worlds for v in world.violations]


@dataclass
class _Outcome(Generic[EndT]):
    end: EndT | None = None
    why: str | None = None
    """Why there is no end."""


def selected_seeds(request: pytest.FixtureRequest, count: int) -> list[int]:
    """The seeds of the module's selected tests (``-k seed_7`` runs one); all ``count`` when
    none are."""
    seeds = [
        int(str(item.callspec.params["seed"]))
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and hasattr(item, "callspec")
        and "seed" in item.callspec.params
    ]
    return seeds or list(range(count))


async def run_seeds(
    deployments: Deployments[ScheduleT, EndT],
    seeds: list[int],
    batch: int,
) -> dict[int, Run[ScheduleT, EndT]]:
    """Every seed's run, ``batch`` at a time, each batch on a time-skipping server of its own
    (a stuck run stops its server's clock for good), stalled runs again (see the module
    docstring)."""
    pending = seeds
    results: dict[int, Run[ScheduleT, EndT]] = {}
    rounds = 0
    while pending and rounds <= RERUNS:
        again: list[int] = []
        for first in range(0, len(pending), batch):
            async with time_skipping_server() as env:
                ran = await run_batch(env, deployments, pending[first : first + batch])
            for seed, run in ran.items():
                if run.stalled_by_another:
                    again.append(seed)
                results[seed] = run
        pending, rounds = again, rounds + 1
    return results


async def run_seeds_apart(
    deployments: Deployments[ScheduleT, EndT], seeds: list[int], *, servers: int, batch: int
) -> dict[int, Run[ScheduleT, EndT]]:
    """``run_seeds`` in ``servers`` groups at once, the seeds dealt out among them, each batch on
    a time-skipping server of its own. A run holds its server's clock while a message of its
    schedule goes out, and a stuck run stops that clock for good: apart, either holds up only
    the runs of its own batch."""
    groups = [seeds[index::servers] for index in range(servers)]
    results: dict[int, Run[ScheduleT, EndT]] = {}
    for ran in await asyncio.gather(
        *(run_seeds(deployments, group, batch) for group in groups if group)
    ):
        results.update(ran)
    return results


async def run_batch(
    env: WorkflowEnvironment, deployments: Deployments[ScheduleT, EndT], seeds: list[int]
) -> dict[int, Run[ScheduleT, EndT]]:
    """Run the seeds' deployments at once behind one worker and collect how each ended."""
    aws = ChaosAws(env.client)
    with aws.failing_workflow_tasks_terminated():
        return await _run_batch(env, deployments, aws, seeds)


async def _run_batch(
    env: WorkflowEnvironment,
    deployments: Deployments[ScheduleT, EndT],
    aws: ChaosAws,
    seeds: list[int],
) -> dict[int, Run[ScheduleT, EndT]]:
    client = env.client
    service = client.service_client.test_service
    async with running_worker(client, aws, sandboxed=False) as task_queue:
        started: dict[int, tuple[ScheduleT, ChaosRun]] = {}
        for seed in seeds:
            schedule = deployments.schedule(seed)
            started[seed] = schedule, await deployments.start(client, aws, task_queue, schedule)
        # One unlock for the whole batch: each result() would unlock on its own otherwise, and
        # the server's lock count does not survive many concurrent unlocks.
        with env.auto_time_skipping_disabled():
            await service.unlock_time_skipping(UnlockTimeSkippingRequest())
            try:
                waits = {
                    seed: asyncio.ensure_future(_settle(deployments, client, run))
                    for seed, (_, run) in started.items()
                }
                stopped = await _until_done_or_stalled(aws, list(waits.values()))
            finally:
                await service.lock_time_skipping(LockTimeSkippingRequest())
        ends = {
            seed: await _stuck(deployments, client, started[seed][1], wait, stopped)
            for seed, wait in waits.items()
        }
        for _, run in started.values():
            await run.finish_tasks()
    runs: dict[int, Run[ScheduleT, EndT]] = {}
    for seed, outcome in ends.items():
        schedule, run = started[seed]
        # A clock that stopped (a run stuck, or nothing moving at all: the test server's clock
        # can stop with no run to blame) leaves the batch's unfinished runs to run again, on
        # a fresh server when ``server`` gives one; a run that hangs every time still fails.
        clock_stopped = aws.stalled() or stopped == IDLE
        collateral = outcome.end is None and clock_stopped and not run.stuck
        runs[seed] = Run(schedule, run, outcome.end, outcome.why, stalled_by_another=collateral)
    return runs


async def _settle(
    deployments: Deployments[Any, EndT], client: Client, run: ChaosRun
) -> _Outcome[EndT]:
    """How the run ended, or why there is no end (an unexpected workflow failure)."""
    try:
        return _Outcome(end=await deployments.end(client, run))
    except Exception as err:  # reported with the seed, not raised: the other runs go on
        return _Outcome(why=f"{type(err).__name__}: {err}")


async def _stuck(
    deployments: Deployments[Any, EndT],
    client: Client,
    run: ChaosRun,
    wait: "asyncio.Future[_Outcome[EndT]]",
    stopped: str,
) -> _Outcome[EndT]:
    """The run's end; a run that did not end in time is terminated and described instead."""
    if wait.done():
        return wait.result()
    wait.cancel()
    try:
        where = await deployments.where(client, run)
    except RPCError as err:
        where = f"no status: {err.message}"
    await run.terminate("did not end in the invariants test")
    # It may have ended on its own between the look and the terminate: judged by that end.
    ended = await asyncio.wait_for(_settle(deployments, client, run), SETTLE_SECONDS)
    if ended.end is not None:
        return ended
    return _Outcome(why=f"did not end: {stopped} ({where})")


async def _until_done_or_stalled(aws: ChaosAws, waits: list["asyncio.Future[Any]"]) -> str:
    """Wait for every run: at most BATCH_LIMIT_SECONDS, IDLE_LIMIT_SECONDS without a call or an
    end, STALL_GRACE_SECONDS once a run is stuck; says why it stopped waiting, if it did."""
    started = moved = time.monotonic()
    stalled_at: float | None = None
    ended, calls = 0, aws.calls
    while not all(wait.done() for wait in waits):
        now = time.monotonic()
        if sum(wait.done() for wait in waits) > ended or aws.calls > calls:
            ended, calls, moved = sum(wait.done() for wait in waits), aws.calls, now
        if stalled_at is None and aws.stalled():
            stalled_at = now
        if stalled_at is not None and now > stalled_at + STALL_GRACE_SECONDS:
            return "a run of its batch got stuck"
        if now > moved + IDLE_LIMIT_SECONDS:
            return IDLE
        if now > started + BATCH_LIMIT_SECONDS:
            return f"its batch took over {BATCH_LIMIT_SECONDS:.0f} s"
        await asyncio.sleep(0.1)
    return "every run ended"
