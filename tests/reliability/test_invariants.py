"""Safety invariants of BlueGreenDeployment under a seeded chaos schedule.

Each seed is one deployment whose configuration, faults, health, connection counts, alarm
states and messages come from ``Schedule(seed)`` (tests/reliability/chaos_aws.py). The fake
checks invariants (a) and (b) on its model after every activity it executes; the test checks
(c), or the success end state, once the run is over. All runs of the module go in batches, many
workflows at once behind one worker, on a time-skipping server.

A failure names its seed; ``pytest tests/reliability/test_invariants.py -k seed_<n>`` runs that
seed alone and replays the same schedule. Messages go as signals: the time-skipping server has
no updates, and the signals run the same handlers.
"""

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from models.deployment import DeploymentStatus, Phase, State
from tests.reliability.chaos_aws import ChaosAws, ChaosWorld, Schedule
from tests.workflows import conftest as workflow_fixtures
from tests.workflows.driving import outcome, running_worker
from workflows.deployment import BlueGreenDeployment

pytestmark = pytest.mark.timeout(300)
"""The module's fixture runs every seed, in batches of at most BATCH_LIMIT_SECONDS, in the time
limit of its first test."""
RUNS = 220
"""Seeds 0 … RUNS-1; the module fails if fewer than MINIMUM_RUNS ran."""
MINIMUM_RUNS = 200
BATCH = 110
"""Deployments at once behind one worker (110 took 72 s for 220 runs on 2 cores, 55 took 83 s)."""
BATCH_LIMIT_SECONDS = 60.0
STALL_GRACE_SECONDS = 3.0
"""Once a run is stuck, how long the rest of its batch may still finish before it is stopped."""
RERUNS = 3

ELAPSED: dict[str, float] = {}
"""Wall time of the runs, for the summary line."""

# The session's time-skipping server fixture, which lives in tests/workflows/conftest.py.
time_skipping = workflow_fixtures.time_skipping


@dataclass
class Run:
    """One seed's deployment: its schedule, the world it left and how it ended."""

    schedule: Schedule
    world: ChaosWorld
    status: DeploymentStatus | None
    error: str | None
    stalled_by_another: bool = False
    """Did not end because another run of its batch stopped the clock: not judged, re-run."""


def selected_seeds(request: pytest.FixtureRequest) -> list[int]:
    """The seeds of this module's selected tests (``-k seed_7`` runs one); all when none are."""
    seeds = [
        int(str(item.callspec.params["seed"]))
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and hasattr(item, "callspec")
        and "seed" in item.callspec.params
    ]
    return seeds or list(range(RUNS))


async def settle(
    handle: WorkflowHandle[BlueGreenDeployment, DeploymentStatus],
) -> DeploymentStatus | str:
    """The final status, or why there is none (an unexpected workflow failure)."""
    try:
        return await outcome(handle)
    except Exception as err:  # reported with the seed, not raised: the other runs go on
        return f"{type(err).__name__}: {err}"


async def stuck(
    handle: WorkflowHandle[BlueGreenDeployment, DeploymentStatus],
    wait: "asyncio.Future[DeploymentStatus | str]",
) -> DeploymentStatus | str:
    """The run's end; a run that did not end in time is terminated and described instead, so
    that one hung deployment fails its own seed and not the whole batch."""
    if wait.done():
        return wait.result()
    wait.cancel()
    try:
        status = await handle.query(BlueGreenDeployment.status, rpc_timeout=timedelta(seconds=5))
        where = f"{status.state.value} in {status.phase.value}"
    except RPCError as err:
        where = f"no status: {err.message}"
    try:
        await handle.terminate("did not end in the invariants test")
    except RPCError as err:
        # It ended between the query and the terminate: judged by its own end, not as stuck.
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return await settle(handle)
    return f"did not end within {BATCH_LIMIT_SECONDS:.0f} s ({where})"


async def until_done_or_stalled(aws: ChaosAws, waits: list["asyncio.Future[Any]"]) -> None:
    """Wait for every run, at most BATCH_LIMIT_SECONDS, or STALL_GRACE_SECONDS once stalled."""
    deadline = time.monotonic() + BATCH_LIMIT_SECONDS
    stalled_at: float | None = None
    while not all(wait.done() for wait in waits) and time.monotonic() < deadline:
        if stalled_at is None and aws.stalled():
            stalled_at = time.monotonic()
        if stalled_at is not None and time.monotonic() > stalled_at + STALL_GRACE_SECONDS:
            return
        await asyncio.sleep(0.1)


async def run_batch(env: WorkflowEnvironment, seeds: list[int]) -> dict[int, Run]:
    """Run the seeds' deployments at once behind one worker and collect how each ended."""
    aws = ChaosAws(env.client)
    with aws.failing_workflow_tasks_terminated():
        return await _run_batch(env, aws, seeds)


async def _run_batch(env: WorkflowEnvironment, aws: ChaosAws, seeds: list[int]) -> dict[int, Run]:
    client = env.client
    service = client.service_client.test_service
    async with running_worker(client, aws) as task_queue:
        handles = {}
        for seed in seeds:
            schedule = Schedule(seed)
            world = aws.add(schedule, f"invariants-{schedule.token}{uuid.uuid4().hex[:8]}")
            handles[seed] = await client.start_workflow(
                BlueGreenDeployment.run,
                schedule.request(),
                id=world.workflow_id,
                task_queue=task_queue,
            )
        # One unlock for the whole batch: each result() would unlock on its own otherwise, and
        # the server's lock count does not survive many concurrent unlocks.
        with env.auto_time_skipping_disabled():
            await service.unlock_time_skipping(UnlockTimeSkippingRequest())
            try:
                waits = {seed: asyncio.ensure_future(settle(h)) for seed, h in handles.items()}
                await until_done_or_stalled(aws, list(waits.values()))
            finally:
                await service.lock_time_skipping(LockTimeSkippingRequest())
        ends = {seed: await stuck(handles[seed], wait) for seed, wait in waits.items()}
        for world in aws.worlds.values():
            for error in await asyncio.gather(*world.tasks, return_exceptions=True):
                if error is not None:
                    world.notes.append(f"message task failed: {error!r}")
    runs = {}
    for seed, end in ends.items():
        world = aws.worlds[seed]
        if isinstance(end, str):
            collateral = aws.stalled() and not world.stuck
            runs[seed] = Run(world.schedule, world, None, end, stalled_by_another=collateral)
        else:
            runs[seed] = Run(world.schedule, world, end, None)
    return runs


@pytest.fixture(scope="module")
async def runs(
    request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment
) -> dict[int, Run]:
    """Every selected seed's run, in batches of BATCH; prints how many, how they ended, how long.

    A batch whose clock stopped because one run got stuck (see
    ``ChaosAws.failing_workflow_tasks_terminated``) keeps that run's result; its other
    unfinished runs go again in the next batch, up to RERUNS times.
    """
    pending = selected_seeds(request)
    started = time.monotonic()
    results: dict[int, Run] = {}
    rounds = 0
    while pending and rounds <= RERUNS:
        again: list[int] = []
        for first in range(0, len(pending), BATCH):
            batch = await run_batch(time_skipping, pending[first : first + BATCH])
            for seed, run in batch.items():
                if run.stalled_by_another:
                    again.append(seed)
                results[seed] = run
        pending, rounds = again, rounds + 1
    ELAPSED["runs"] = time.monotonic() - started
    return results


def summary(results: dict[int, Run]) -> str:
    """E.g. "220 runs: 120 succeeded, 60 failed, 40 rolled_back; messages: …"."""
    ends = Counter(run.status.state.value if run.status else "error" for run in results.values())
    notes = Counter(
        note.split(" ")[0] + (" (phase)" if " in " in note else " (call)")
        for run in results.values()
        for note in run.world.notes
    )
    return (
        f"{len(results)} runs: "
        + ", ".join(f"{count} {end}" for end, count in sorted(ends.items()))
        + f"; messages: {dict(sorted(notes.items()))}"
    )


def end_state_problems(run: Run) -> list[str]:
    """Invariant (c) for a run that failed or rolled back; the success end state otherwise."""
    status, world = run.status, run.world
    if status is None:
        return [f"no final status: {run.error}"]
    now, before = world.snapshot(), world.before
    old, new, version = world.old, world.new, world.version
    problems = []
    if status.rollback is not None and status.state == State.SUCCEEDED:
        problems.append("a rollback was accepted, yet the deployment succeeded")
    if status.state in (State.FAILED, State.ROLLED_BACK):
        report = status.report
        assert report is not None
        if report.compensation_errors:
            # Only the schedule may break a restoring step for good; then nothing can be
            # promised but that the report says so, and (a) held on every step on the way.
            if not world.restore_failed:
                problems.append(f"(c) restoring failed by itself: {report.compensation_errors}")
            if status.state != State.FAILED:
                problems.append(f"restore failed ({report.compensation_errors}) but not FAILED")
        elif report.phase == Phase.CLEANING_UP:
            # The design's last row: once the old color is being shut down there is no way
            # back, so the new color must still serve.
            if now["weights"][new] != 100 or now["active"] != new:
                problems.append(f"(c) failed in cleanup but the new color does not serve: {now}")
        elif now != before:
            problems.append(f"(c) {status.state.value}, production not as before: {before} → {now}")
    elif status.state == State.SUCCEEDED:
        expected = dict(before, versions=before["versions"] | {new: version})
        expected["desired"] = before["desired"] | {new: 2}
        expected["task_definitions"] = before["task_definitions"] | {new: world.new_revision}
        if run.schedule.switch_active_cluster:
            expected |= {"active": new, "weights": {old: 0, new: 100}}
            if run.schedule.shutdown_inactive_cluster:
                expected["desired"] = {old: 0, new: 2}
        if now != expected:
            problems.append(f"succeeded, but the end state is {now}, expected {expected}")
    else:
        problems.append(f"ended {status.state.value}")
    return problems


@pytest.mark.parametrize("seed", range(RUNS), ids=lambda seed: f"seed_{seed}")
async def test_invariants_hold(seed: int, runs: dict[int, Run]) -> None:
    """(a) and (b) after every activity, (c) or the success end state at the end."""
    run = runs[seed]
    problems = run.world.violations + end_state_problems(run)
    status = run.status
    assert not problems, (
        f"seed {seed} (rerun: pytest tests/reliability/test_invariants.py -k seed_{seed}):\n  "
        + "\n  ".join(problems)
        + f"\nschedule: {run.schedule.describe()}"
        + f"\nended: {status.state.value if status else run.error}"
        + (
            f" in {status.report.phase.value}: {status.report.reason}"
            if status and status.report
            else ""
        )
        + f"\nmessages: {run.world.notes}"
        + f"\ncalls: {' | '.join(run.world.trace)}"
    )


async def test_at_least_200_randomized_runs(
    runs: dict[int, Run], capsys: pytest.CaptureFixture[str]
) -> None:
    """The invariants above mean something only over many schedules; prints how many ran."""
    with capsys.disabled():
        print(f"\ninvariants: {summary(runs)} in {ELAPSED.get('runs', 0):.1f} s")
    assert len(runs) >= MINIMUM_RUNS, f"only {len(runs)} runs: {summary(runs)}"
    ended = {run.status.state for run in runs.values() if run.status}
    # The schedule must reach every ending, or an invariant goes unchecked for one of them.
    assert {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK} <= ended, summary(runs)
