"""Long waits stay small: a 48-hour drain polled every 30 s, on the time-skipping server.

Temporal warns at 10,240 history events and stops a workflow at 51,200. Each poll costs about
11 events, so a wait runs INLINE_CHECKS checks in the deployment and then moves to a child that
continues as new every CHECKS_PER_RUN checks (workflows/long_wait.py); these tests walk every
run's history and check none passes 2,000, while the latest result and the number of checks
stay readable along the way.
"""

import math
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from cli.deployments import with_watch_progress
from models.activities import AlarmsInput, CheckHealthInput
from models.deployment import Phase, State
from models.messages import RollbackRequest
from models.observations import AlarmState, HealthObservation
from tests.factories import deployment_request, environment
from tests.workflows.driving import (
    outcome,
    running_worker,
    start,
    wait_for_phase,
    wait_until_between_activities,
)
from tests.workflows.fake_aws import FakeAws
from workflows import waits
from workflows.deployment import BlueGreenDeployment
from workflows.lease import lease_id
from workflows.long_wait import CHECKS_PER_RUN, INLINE_CHECKS

MAX_EVENTS = 2_000
DRAIN = {"timeout": "48h", "poll_interval": "30s"}
# A check at the start and after every 30 s up to the 48th hour. The test server's clock also
# moves with real time while a check runs (a few ms each, more on a busy machine), which leaves
# out one check at the end for every 30 s it drifts: at most one per 30 s of the test's wall time.
CHECKS_IN_48_HOURS = 48 * 120 + 1


async def every_run(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The histories of every run of ``workflow_id``, oldest first (continue-as-new chain)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    runs = [history]
    started = history.events[0].workflow_execution_started_event_attributes
    while started.continued_execution_run_id:
        previous = client.get_workflow_handle(
            workflow_id, run_id=started.continued_execution_run_id
        )
        history = await previous.fetch_history()
        runs.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
    return runs


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Let ``duration`` pass on the test server, a few hours per call: each skipped hour runs
    120 checks in real time, and one call must end within the client's RPC timeout."""
    step = timedelta(hours=3)
    while duration > timedelta(0):
        await env.sleep(min(step, duration))
        duration -= step


def counted(runs: list[WorkflowHistory], activity: str | None = None) -> int:
    """The activities scheduled in ``runs`` (named ``activity``, if given)."""
    return sum(
        1
        for run in runs
        for event in run.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and activity in (None, event.activity_task_scheduled_event_attributes.activity_type.name)
    )


async def current_details(client: Client, workflow_id: str) -> str:
    """What the Web UI shows as the workflow's current details."""
    metadata = await client.get_workflow_handle(workflow_id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    return str(metadata.current_details)


@pytest.mark.timeout(180)  # 5,761 checks, each an activity and a timer in real time
async def test_a_48_hour_drain_polled_every_30_s_keeps_every_history_under_2000_events(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    # 40 players never leave: the drain runs to its timeout, then the old color is shut down.
    aws = FakeAws(connections=[40])
    request = deployment_request(environment(drain=DRAIN))
    began = time.monotonic()
    # Unsandboxed: the sandbox imports the workflow modules anew for each of the drain's 58 runs;
    # determinism is the replay tests' question, the size of the histories this one's.
    async with running_worker(client, aws, sandboxed=False) as task_queue:
        handle = await start(client, task_queue, request)
        await wait_for_phase(handle, Phase.DRAINING)
        drain_id = f"{handle.id}-drain"
        # A day into the drain, both the checks so far and the latest count are readable: in the
        # child's details and query, and the deployment's details say where to look.
        await skip(time_skipping, timedelta(hours=24))
        midway = await client.get_workflow_handle(drain_id).query(
            "progress", result_type=waits.DrainProgress
        )
        details = await current_details(client, drain_id)
        deployment_details = await current_details(client, handle.id)
        status = await handle.query(BlueGreenDeployment.status)
        final = await outcome(handle)
    drift_checks = math.ceil((time.monotonic() - began) / 30)

    assert waits.watching(status) == (waits.DRAIN, drain_id)
    assert f"the checks go on in `{drain_id}`" in deployment_details
    assert 24 * 120 - 10 <= midway.checks <= 24 * 120 + 10
    assert midway.last is not None and midway.last.count == 40
    assert f"- {midway.checks} checks so far, every 30s" in details
    assert "clients left: **40**" in details
    # The whole 48 hours were polled, every 30 s, and the deployment went on as configured.
    assert final.state == State.SUCCEEDED
    assert final.connection_checks == aws.connection_checks
    assert CHECKS_IN_48_HOURS - drift_checks - 1 <= final.connection_checks <= CHECKS_IN_48_HOURS
    assert final.last_connections is not None and final.last_connections.count == 40
    assert "drain timed out after 2d with 40 clients still on blue" in final.warnings[0]
    assert aws.desired["blue"] == 0

    deployment = await handle.fetch_history()
    drain = await every_run(client, drain_id)
    assert len(drain) == math.ceil((final.connection_checks - INLINE_CHECKS) / CHECKS_PER_RUN)
    sizes = [len(run.events) for run in [deployment, *drain]]
    assert max(sizes) < MAX_EVENTS, sizes
    # The first checks are in the deployment's history, every other one in the drain's runs.
    assert counted(drain) == final.connection_checks - INLINE_CHECKS
    assert counted([deployment], "count_connections") == INLINE_CHECKS


async def test_usual_waits_stay_in_the_deployment_and_its_history_stays_small(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    # Each wait takes as many checks as it may without moving to a child.
    aws = FakeAws(
        healthy_after=INLINE_CHECKS,
        alarms={"game-5xx": ["OK"]},
        connections=[9] * (INLINE_CHECKS - 1) + [0],
    )
    bake = {
        "duration": f"{15 * (INLINE_CHECKS - 1)}s",
        "poll_interval": "15s",
        "alarms": ["game-5xx"],
    }
    request = deployment_request(environment(drain=DRAIN, bake=bake))
    async with running_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, request)
        final = await outcome(handle)
        history = await handle.fetch_history()

    assert final.state == State.SUCCEEDED
    assert (final.health_checks, final.alarm_checks) == (INLINE_CHECKS, INLINE_CHECKS)
    assert final.connection_checks == INLINE_CHECKS
    assert final.watch_workflow_id is None
    children = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    # The environment's lease is its only child: no wait moved to one.
    assert children == [lease_id("game", "prod")]
    assert len(history.events) < MAX_EVENTS


async def test_a_rollback_in_a_long_drain_stops_the_drain_and_keeps_its_last_count(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    aws = FakeAws(connections=[40])
    request = deployment_request(environment(drain=DRAIN))
    async with running_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, request)
        await wait_for_phase(handle, Phase.DRAINING)
        await skip(time_skipping, timedelta(hours=3))
        await wait_until_between_activities(client.get_workflow_handle(f"{handle.id}-drain"))
        # client.py's status: the deployment knows its own checks, the child's come from it.
        shown = await handle.query(BlueGreenDeployment.status)
        in_the_deployment = shown.connection_checks
        await with_watch_progress(client, shown)
        await handle.signal("rollback", RollbackRequest(reason="desyncs", by="bob"))
        final = await outcome(handle)
        drain = client.get_workflow_handle(f"{handle.id}-drain", result_type=waits.DrainProgress)
        seen = await drain.result()

    assert in_the_deployment == INLINE_CHECKS
    assert shown.connection_checks >= 3 * 120
    assert shown.last_connections is not None and shown.last_connections.count == 40
    assert final.state == State.ROLLED_BACK
    assert aws.weights == {"blue": 100, "green": 0}
    assert aws.desired["blue"] == 2
    # The drain stopped when asked and told the deployment what it saw last.
    assert (await drain.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert not seen.met
    assert final.connection_checks == seen.checks >= 3 * 120
    assert final.last_connections is not None and final.last_connections.count == 40


async def test_a_long_bake_watches_its_alarms_in_runs_that_stay_small(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    # A 2-hour bake, alarms read every 15 s (the default): 481 checks, 40 in the deployment,
    # the rest in five runs of the watch.
    aws = FakeAws(alarms={"game-5xx": ["OK"]})
    bake = {"duration": "2h", "poll_interval": "15s", "alarms": ["game-5xx"]}
    request = deployment_request(environment(bake=bake))
    async with running_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, request)
        await wait_for_phase(handle, Phase.BAKING)
        bake_id = f"{handle.id}-bake"
        await skip(time_skipping, timedelta(hours=1))
        midway = await client.get_workflow_handle(bake_id).query(
            "progress", result_type=waits.BakeProgress
        )
        details = await current_details(client, bake_id)
        final = await outcome(handle)

    assert 120 * 2 - 5 <= midway.checks <= 120 * 2 + 5
    assert f"- {midway.checks} checks so far, every 15s" in details
    assert "game-5xx **OK**" in details
    assert final.state == State.SUCCEEDED
    # One check at setup, then the bake's: every 15 s for 2 hours.
    assert final.alarm_checks == aws.alarm_checks - 1
    assert 2 * 240 - 1 <= final.alarm_checks <= 2 * 240 + 1
    runs = await every_run(client, bake_id)
    assert len(runs) == math.ceil((final.alarm_checks - INLINE_CHECKS) / CHECKS_PER_RUN)
    sizes = [len(run.events) for run in [await handle.fetch_history(), *runs]]
    assert max(sizes) < MAX_EVENTS, sizes


async def test_an_alarm_in_a_long_bake_rolls_back_with_its_reason(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    # Quiet for 150 checks (past the first run of the watch), then the alarm fires.
    aws = FakeAws(alarms={"game-5xx": ["OK"] * 151 + ["ALARM"]})
    bake = {"duration": "6h", "poll_interval": "15s", "alarms": ["game-5xx"]}
    async with running_worker(client, aws) as task_queue:
        final = await outcome(
            await start(client, task_queue, deployment_request(environment(bake=bake)))
        )

    assert final.state == State.ROLLED_BACK
    assert final.report is not None and final.report.phase == Phase.BAKING
    assert "alarm game-5xx is in ALARM" in final.report.reason
    assert final.alarm_checks == 151
    assert aws.weights == {"blue": 100, "green": 0}


DENIED = ApplicationError(
    "AccessDeniedException: not authorized", type="AccessDenied", non_retryable=True
)


@dataclass
class DeniedInTheChild(FakeAws):
    """Health checks and alarm reads denied from ``denied_from`` on: after the wait's move."""

    denied_from: int = INLINE_CHECKS + 1

    @activity.defn(name="check_health")
    async def check_health(self, arg: CheckHealthInput) -> HealthObservation:
        if self.health_checks + 1 >= self.denied_from:
            raise DENIED
        return await super().check_health(arg)

    @activity.defn(name="read_alarm_states")
    async def read_alarm_states(self, arg: AlarmsInput) -> list[AlarmState]:
        if self.alarm_checks + 1 >= self.denied_from:
            raise DENIED
        return await super().read_alarm_states(arg)


async def test_a_step_failing_in_the_health_wait_child_fails_the_deployment_and_restores(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    aws = DeniedInTheChild(healthy_after=None)
    async with running_worker(client, aws) as task_queue:
        final = await outcome(await start(client, task_queue))

    # Not a hang: the child fails, and the deployment puts the new color back to zero.
    assert final.state == State.FAILED
    assert final.report is not None and final.report.phase == Phase.WAITING_FOR_HEALTH
    assert "is green healthy?: AccessDeniedException: not authorized" in final.report.reason
    assert final.report.error_type == "AccessDenied"
    assert aws.weights == {"blue": 100, "green": 0}
    assert (aws.desired["blue"], aws.desired["green"]) == (2, 0)


async def test_a_step_failing_in_the_bake_child_rolls_back(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    # The first read is the check before deploying; the 41 after it are the bake's own.
    aws = DeniedInTheChild(alarms={"game-5xx": ["OK"]}, denied_from=INLINE_CHECKS + 2)
    bake = {"duration": "2h", "poll_interval": "15s", "alarms": ["game-5xx"]}
    request = deployment_request(environment(bake=bake))
    async with running_worker(client, aws) as task_queue:
        final = await outcome(await start(client, task_queue, request))

    assert final.state == State.ROLLED_BACK
    assert final.report is not None and final.report.phase == Phase.BAKING
    assert "AccessDeniedException: not authorized" in final.report.reason
    assert aws.weights == {"blue": 100, "green": 0}
    assert aws.active == "blue"
