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

import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from temporalio.client import Client

from models.deployment import DeploymentStatus, State
from tests.reliability.chaos_aws import ChaosAws, ChaosRun, Schedule
from tests.reliability.chaos_runs import Deployments, Run, run_seeds_apart, selected_seeds
from tests.workflows.driving import Handle, outcome
from workflows.deployment import BlueGreenDeployment

pytestmark = pytest.mark.timeout(300)
"""The module's fixture runs every seed, in batches (tests/reliability/chaos_runs.py), in the
time limit of its first test."""
RUNS = 220
"""Seeds 0 … RUNS-1; the module fails if fewer than MINIMUM_RUNS ran."""
MINIMUM_RUNS = 200
SERVERS = 4
"""Time-skipping servers of the module's own, running their share of the seeds at once."""
BATCH = 11
"""Deployments at once on one server, behind one worker."""

ELAPSED: dict[str, float] = {}
"""Wall time of the runs, for the summary line."""

OneRegionRun = Run[Schedule, DeploymentStatus]


class OneRegion(Deployments[Schedule, DeploymentStatus]):
    """A BlueGreenDeployment per seed, its one world under the seed's token."""

    def schedule(self, seed: int) -> Schedule:
        return Schedule(seed)

    async def start(
        self, client: Client, aws: ChaosAws, task_queue: str, schedule: Schedule
    ) -> ChaosRun:
        run = aws.add(schedule, f"invariants-{schedule.token}{uuid.uuid4().hex[:8]}")
        handle = await client.start_workflow(
            BlueGreenDeployment.run, schedule.request(), id=run.workflow_id, task_queue=task_queue
        )
        run.run_id = handle.result_run_id
        return run

    async def end(self, client: Client, run: ChaosRun) -> DeploymentStatus:
        return await outcome(self._handle(client, run))

    async def where(self, client: Client, run: ChaosRun) -> str:
        handle = self._handle(client, run)
        status = await handle.query(BlueGreenDeployment.status, rpc_timeout=timedelta(seconds=5))
        return f"{status.state.value} in {status.phase.value}"

    @staticmethod
    def _handle(client: Client, run: ChaosRun) -> Handle:
        return client.get_workflow_handle_for(
            BlueGreenDeployment.run, run.workflow_id, run_id=run.run_id
        )


@pytest.fixture(scope="module")
async def runs(request: pytest.FixtureRequest) -> dict[int, OneRegionRun]:
    """Every selected seed's run, in batches of BATCH on SERVERS servers."""
    started = time.monotonic()
    seeds = selected_seeds(request, RUNS)
    results = await run_seeds_apart(OneRegion(), seeds, servers=SERVERS, batch=BATCH)
    ELAPSED["runs"] = time.monotonic() - started
    return results


def summary(results: dict[int, OneRegionRun]) -> str:
    """E.g. "220 runs: 120 succeeded, 60 failed, 40 rolled_back; messages: …"."""
    ends = Counter(run.end.state.value if run.end else "error" for run in results.values())
    notes = Counter(
        note.split(" ")[0] + (" (phase)" if " in " in note else " (call)")
        for run in results.values()
        for note in run.chaos.all_notes()
    )
    return (
        f"{len(results)} runs: "
        + ", ".join(f"{count} {end}" for end, count in sorted(ends.items()))
        + f"; messages: {dict(sorted(notes.items()))}"
    )


def end_state_problems(run: OneRegionRun) -> list[str]:
    """Invariant (c) for a run that failed or rolled back; the success end state otherwise."""
    if run.end is None:
        return [f"no final status: {run.error}"]
    schedule = run.schedule
    return run.chaos.worlds["us-west-2"].end_state_problems(
        run.end, schedule.switch_active_cluster, schedule.shutdown_inactive_cluster
    )


@pytest.mark.parametrize("seed", range(RUNS), ids=lambda seed: f"seed_{seed}")
async def test_invariants_hold(seed: int, runs: dict[int, OneRegionRun]) -> None:
    """(a) and (b) after every activity, (c) or the success end state at the end."""
    run = runs[seed]
    problems = run.violations() + end_state_problems(run)
    status = run.end
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
        + f"\nmessages: {run.chaos.all_notes()}"
        + f"\ncalls: {' | '.join(run.chaos.worlds['us-west-2'].trace)}"
    )


async def test_at_least_200_randomized_runs(
    runs: dict[int, OneRegionRun], capsys: pytest.CaptureFixture[str]
) -> None:
    """The invariants above mean something only over many schedules; prints how many ran."""
    with capsys.disabled():
        print(f"\ninvariants: {summary(runs)} in {ELAPSED.get('runs', 0):.1f} s")
    assert len(runs) >= MINIMUM_RUNS, f"only {len(runs)} runs: {summary(runs)}"
    ended = {run.end.state for run in runs.values() if run.end}
    # The schedule must reach every ending, or an invariant goes unchecked for one of them.
    assert {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK} <= ended, summary(runs)
