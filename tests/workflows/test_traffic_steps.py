"""Traffic steps on the time-skipping server with fake activities: the sequence of splits, what
SSM says between them, approval of a step, and a rollback at every step.

Time passes only while a test awaits a result or skips it (``time_skipping.sleep``): a test
polls the status to find a deployment holding a step, then moves the clock on.
"""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from models.messages import ApproveRequest, RollbackRequest
from tests.factories import deployment_request, environment
from tests.workflows.driving import (
    outcome,
    phases,
    running_worker,
    start,
    wait_until_between_activities,
)
from tests.workflows.fake_aws import OLD_TASK_DEFINITION, FakeAws
from workflows.deployment import BlueGreenDeployment

BLUE = {"blue": 100, "green": 0}
GREEN = {"blue": 0, "green": 100}


def stepped(require_approval: bool = False, **traffic: Any) -> DeploymentRequest:
    """Deploy version 2 with the traffic steps ``traffic`` and no bake."""
    env: EnvironmentConfig = environment(traffic=traffic, bake={"duration": "0s"})
    return deployment_request(env, require_approval=require_approval)


def split(green: int) -> dict[str, int]:
    return {"blue": 100 - green, "green": green}


async def holding(
    handle: WorkflowHandle[Any, Any], step: int, seconds: float = 30
) -> DeploymentStatus:
    """Poll until the deployment holds step ``step`` (real time: the clock does not move), and
    is between activities, so that a message cannot cross one."""
    for _ in range(int(seconds / 0.05)):
        status = await handle.query(BlueGreenDeployment.status)
        if status.traffic_step == step and status.step_until is not None:
            await wait_until_between_activities(handle)
            return status
        assert status.state == State.RUNNING, status.report
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never held step {step}")


def assert_all_back_on_blue(aws: FakeAws, status: DeploymentStatus) -> None:
    assert status.state == State.ROLLED_BACK
    assert aws.active == "blue"
    assert aws.weights == BLUE
    assert aws.desired == {"blue": 2, "green": 0}
    assert aws.versions == {"blue": "1", "green": None}
    assert aws.task_definitions["green"] == OLD_TASK_DEFINITION
    assert status.traffic_step == 0
    assert status.report is not None
    # All traffic goes back before anything else is undone.
    assert status.report.compensation[0] == "traffic back to blue"


async def test_canary_takes_its_step_then_all_traffic(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws()
    async with running_worker(time_skipping.client, aws) as task_queue:
        handle = await start(
            time_skipping.client, task_queue, stepped(strategy="canary", percent=10, pause="5m")
        )
        at_ten = await holding(handle, 1)
        assert aws.active == "blue"  # SSM keeps the old color until all traffic moved
        assert at_ten.step_until is not None
        assert "green 10%, blue 90% (step 1 of 2, holding until" in str(at_ten.traffic_text())
        status = await outcome(handle)

    assert status.state == State.SUCCEEDED
    assert aws.splits == [split(10), GREEN]
    assert status.traffic_plan == [10, 100]
    assert status.traffic_step == 2
    names = aws.names()
    assert names.index("set_traffic_weights") < names.index("set_active_color")
    assert names.index("set_active_color") < names.index("switch_traffic")
    assert names.index("switch_traffic") < names.index("scale_to_zero")
    assert status.active_color_after == "green"


async def test_linear_steps_in_order_and_each_pause_is_a_durable_timer(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    async with running_worker(time_skipping.client, aws) as task_queue:
        handle = await start(
            time_skipping.client,
            task_queue,
            stepped(strategy="CodeDeployDefault.ECSLinear10PercentEvery3Minutes"),
        )
        status = await outcome(handle)
        history = await handle.fetch_history()

    assert status.state == State.SUCCEEDED
    assert aws.splits == [split(p) for p in range(10, 100, 10)] + [GREEN]
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
        for e in history.events
        if e.HasField("timer_started_event_attributes")
    ]
    assert timers.count(180) == 9
    # Every step before the last was set while SSM still named blue.
    first_active = aws.names().index("set_active_color")
    assert aws.names()[:first_active].count("set_traffic_weights") == 9


async def test_a_step_waits_for_approval_and_records_it(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws()
    async with running_worker(time_skipping.client, aws) as task_queue:
        handle = await start(
            time_skipping.client,
            task_queue,
            stepped(strategy="steps", steps=[10, 50, 100], pause="1m", approve_at=[50]),
        )
        await holding(handle, 1)
        await time_skipping.sleep(timedelta(minutes=2))
        waiting = await holding(handle, 2)
        # An hour later it still waits: no timer moves this step on.
        await time_skipping.sleep(timedelta(hours=1))
        still = await holding(handle, 2)
        await handle.signal(
            BlueGreenDeployment.approve_signal, ApproveRequest(by="bob", comment="50% looks fine")
        )
        status = await outcome(handle)

    assert waiting.awaiting_step_approval and still.awaiting_step_approval
    assert aws.splits == [split(10), split(50), GREEN]
    assert status.state == State.SUCCEEDED
    assert [(a.step, a.percent, a.by) for a in status.step_approvals] == [(2, 50, "bob")]
    assert status.approval is None  # a step's approval is not the approval to switch


async def test_four_eyes_applies_to_a_step_approval(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws()
    env = environment(
        traffic={"strategy": "canary", "percent": 10, "pause": "1m", "approve_at": [10]},
        bake={"duration": "0s"},
        approval={"require_different_approver": True},
    )
    async with running_worker(time_skipping.client, aws) as task_queue:
        handle = await start(
            time_skipping.client, task_queue, deployment_request(env, requested_by="alice")
        )
        await holding(handle, 1)
        await handle.signal(BlueGreenDeployment.approve_signal, ApproveRequest(by="alice"))
        refused = await holding(handle, 1)
        await handle.signal(BlueGreenDeployment.approve_signal, ApproveRequest(by="bob"))
        status = await outcome(handle)

    assert refused.awaiting_step_approval and not refused.step_approvals
    assert any("alice" in w for w in refused.warnings)
    assert status.state == State.SUCCEEDED
    assert [a.by for a in status.step_approvals] == ["bob"]


@pytest.mark.parametrize("on_timeout", ["abort", "proceed"])
async def test_a_step_nobody_approves_ends_as_configured(
    time_skipping: WorkflowEnvironment, on_timeout: str
) -> None:
    aws = FakeAws()
    env = environment(
        traffic={"strategy": "canary", "percent": 20, "pause": "1m", "approve_at": [20]},
        bake={"duration": "0s"},
        approval={"timeout": "2h", "on_timeout": on_timeout},
    )
    async with running_worker(time_skipping.client, aws) as task_queue:
        status = await outcome(
            await start(time_skipping.client, task_queue, deployment_request(env))
        )

    if on_timeout == "abort":
        assert_all_back_on_blue(aws, status)
        assert status.report is not None and status.report.error_type == "ApprovalTimeout"
        assert aws.splits == [split(20), BLUE]
    else:
        assert status.state == State.SUCCEEDED
        assert [a.by for a in status.step_approvals] == ["timeout"]
        assert any("nobody approved" in w for w in status.warnings)


@pytest.mark.parametrize("step", [1, 2])
async def test_a_rollback_at_any_step_puts_all_traffic_back_first(
    time_skipping: WorkflowEnvironment, step: int
) -> None:
    aws = FakeAws()
    async with running_worker(time_skipping.client, aws) as task_queue:
        handle = await start(
            time_skipping.client,
            task_queue,
            stepped(strategy="steps", steps=[10, 50, 100], pause="10m"),
        )
        for earlier in range(1, step):
            await holding(handle, earlier)
            await time_skipping.sleep(timedelta(minutes=11))
        await holding(handle, step)
        await handle.signal(
            BlueGreenDeployment.rollback_signal, RollbackRequest(reason="desyncs", by="carol")
        )
        status = await outcome(handle)

    assert_all_back_on_blue(aws, status)
    assert aws.splits == [split(p) for p in [10, 50][:step]] + [BLUE]
    assert status.rollback is not None and status.rollback.phase == Phase.SWITCHING
    assert "set_active_color" not in [n for n, a in aws.calls if getattr(a, "color", "") == "green"]


async def test_an_alarm_during_a_step_rolls_back_before_more_traffic_moves(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(alarms={"game-5xx": ["OK", "OK", "ALARM"]})
    env = environment(
        traffic={"strategy": "linear", "percent": 20, "pause": "1m"},
        bake={"duration": "5m", "poll_interval": "15s", "alarms": ["game-5xx"]},
    )
    async with running_worker(time_skipping.client, aws) as task_queue:
        status = await outcome(
            await start(time_skipping.client, task_queue, deployment_request(env))
        )

    assert_all_back_on_blue(aws, status)
    assert status.report is not None and status.report.error_type == "AlarmFired"
    assert "game-5xx" in status.report.reason
    # Checks every 15 s: the ALARM (the setup's check, then two in the steps) came in the first
    # minute, at 20%.
    assert aws.splits == [split(20), BLUE]
    assert Phase.BAKING not in phases(status)


async def test_all_at_once_is_one_step(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws()
    async with running_worker(time_skipping.client, aws) as task_queue:
        status = await outcome(await start(time_skipping.client, task_queue, stepped()))

    assert status.state == State.SUCCEEDED
    assert "set_traffic_weights" not in aws.names()
    assert aws.splits == [GREEN]
    assert (status.traffic_plan, status.traffic_step) == ([100], 1)
    assert status.traffic_text() == "green 100%, blue 0%"
