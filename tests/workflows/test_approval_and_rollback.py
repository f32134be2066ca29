"""Approval, rollback messages and the bake, on the time-skipping server with fake activities.

Messages go as signals here (the time-skipping server has no updates); they run the same
handlers as the updates, whose refusals tests/test_messages.py checks on the dev server.
"""

from datetime import timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from models.deployment import DeploymentRequest, Phase, State
from models.messages import ApproveRequest, RollbackRequest
from tests.factories import deployment_request, environment
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.driving import (
    assert_blue_untouched,
    deploy,
    outcome,
    phases,
    running_worker,
    signalled_in,
    start,
    wait_for_phase,
)
from tests.workflows.fake_aws import OLD_TASK_DEFINITION, FakeAws
from workflows.deployment import BlueGreenDeployment

ROLLBACK = RollbackRequest(reason="players report desyncs", by="alice")


def request(require_approval: bool = False, **environment_overrides: Any) -> DeploymentRequest:
    return deployment_request(
        environment(**environment_overrides), require_approval=require_approval
    )


def assert_rolled_back_to_blue(aws: FakeAws) -> None:
    """Blue serves as before, green is back at zero with its old SSM version, on the task
    definition it ran before the deployment."""
    assert aws.active == "blue"
    assert aws.weights == {"blue": 100, "green": 0}
    assert aws.desired == {"blue": 2, "green": 0}
    assert aws.versions == {"blue": "1", "green": None}
    assert aws.task_definitions == {"blue": OLD_TASK_DEFINITION, "green": OLD_TASK_DEFINITION}


async def test_approval_waits_then_switches_and_records_who_approved(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, request(require_approval=True))
        waiting = await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
        await handle.signal(
            BlueGreenDeployment.approve_signal, ApproveRequest(by="alice", comment="lgtm")
        )
        status = await outcome(handle)

    assert waiting.awaiting_approval_since is not None
    assert waiting.awaiting_approval_until == waiting.awaiting_approval_since + timedelta(hours=24)
    assert "set_active_color" not in [name for name, _ in aws.calls[: len(aws.calls) // 2]]
    assert status.state == State.SUCCEEDED
    assert status.approval is not None
    assert (status.approval.by, status.approval.comment) == ("alice", "lgtm")
    assert waiting.awaiting_approval_since <= status.approval.at
    assert phases(status).index(Phase.AWAITING_APPROVAL) < phases(status).index(Phase.SWITCHING)
    assert aws.active == "green"


async def test_nothing_switches_before_approval(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws()
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, request(require_approval=True))
        await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
        assert_blue_untouched(aws)
        await handle.signal(BlueGreenDeployment.rollback_signal, ROLLBACK)
        await outcome(handle)


async def test_approval_timeout_aborts_and_scales_the_new_color_back_by_default(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    status = await deploy(time_skipping.client, aws, request(require_approval=True))

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.AWAITING_APPROVAL
    assert status.report.error_type == "ApprovalTimeout"
    assert "nobody approved within 1d" in status.report.reason
    assert status.approval is None
    assert_rolled_back_to_blue(aws)
    assert_blue_untouched(aws)


async def test_approval_timeout_proceeds_when_configured(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    approval = {"timeout": "30m", "on_timeout": "proceed"}
    status = await deploy(
        time_skipping.client, aws, request(require_approval=True, approval=approval)
    )

    assert status.state == State.SUCCEEDED
    assert status.approval is not None and status.approval.by == "timeout"
    waited = (
        status.approval.at - status.phases[phases(status).index(Phase.AWAITING_APPROVAL)].entered_at
    )
    assert timedelta(minutes=30) <= waited < timedelta(minutes=30, seconds=1)
    assert any("nobody approved within 30m" in w for w in status.warnings)
    assert aws.active == "green"


async def test_an_approve_nobody_waits_for_is_ignored_with_a_warning(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.BAKING,
        BlueGreenDeployment.approve_signal,
        ApproveRequest(by="bob"),
        request(bake={"duration": "1h", "poll_interval": "1m"}),
    )

    assert status.state == State.SUCCEEDED
    assert status.approval is None
    assert any(
        w.startswith("ignored approve from bob: not waiting for approval") for w in status.warnings
    )


# --- four eyes: approval.require_different_approver ------------------------------------------

FOUR_EYES = {"require_different_approver": True}
SELF_APPROVAL = (
    "ignored approve from {by}: {by} started this deployment;"
    " approval.require_different_approver asks someone else to approve it"
)


def started_by_alice(**approval: Any) -> DeploymentRequest:
    """A deployment alice starts, waiting for approval under ``approval``'s rules."""
    return deployment_request(
        environment(approval=approval), require_approval=True, requested_by="alice"
    )


@pytest.mark.parametrize(
    ("approve", "warning"),
    [
        (ApproveRequest(by="alice", comment="mine"), SELF_APPROVAL.format(by="alice")),
        # The same person, however the name is written.
        (ApproveRequest(by=" Alice "), SELF_APPROVAL.format(by=" Alice ")),
        # Nobody said who approves: it could be the starter.
        (
            ApproveRequest(),
            "ignored approve from unknown: approval.require_different_approver is set:"
            " the approval must say who gives it (by)",
        ),
    ],
    ids=["starter", "starter-in-capitals", "nobody-named"],
)
async def test_four_eyes_refuses_the_starters_approval_with_the_reason(
    time_skipping: WorkflowEnvironment, approve: ApproveRequest, warning: str
) -> None:
    aws = FakeAws()
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.AWAITING_APPROVAL,
        BlueGreenDeployment.approve_signal,
        approve,
        started_by_alice(**FOUR_EYES),
    )

    # Refused, it approved nothing: the deployment waited on until its timeout aborted it.
    assert status.approval is None
    assert warning in status.warnings
    assert status.state == State.FAILED
    assert status.report is not None and status.report.error_type == "ApprovalTimeout"
    assert not {"set_active_color", "switch_traffic"} & set(aws.names())
    assert_rolled_back_to_blue(aws)


async def test_four_eyes_accepts_another_persons_approval(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.AWAITING_APPROVAL,
        BlueGreenDeployment.approve_signal,
        ApproveRequest(by="bob", comment="looks good"),
        started_by_alice(**FOUR_EYES),
    )

    assert status.state == State.SUCCEEDED
    assert status.approval is not None
    assert (status.approval.by, status.approval.comment) == ("bob", "looks good")
    assert status.warnings == []
    assert aws.active == "green"


async def test_by_default_the_starter_may_approve(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws()
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.AWAITING_APPROVAL,
        BlueGreenDeployment.approve_signal,
        ApproveRequest(by="alice"),
        started_by_alice(),
    )

    assert status.state == State.SUCCEEDED
    assert status.approval is not None and status.approval.by == "alice"
    assert status.warnings == []
    assert aws.active == "green"


async def test_rollback_while_awaiting_approval_aborts_before_the_switch(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.AWAITING_APPROVAL,
        BlueGreenDeployment.rollback_signal,
        ROLLBACK,
        request(require_approval=True),
    )

    assert status.state == State.ROLLED_BACK
    assert status.rollback is not None
    assert (status.rollback.by, status.rollback.phase) == ("alice", Phase.AWAITING_APPROVAL)
    assert status.report is not None
    assert status.report.error_type == "RollbackRequested"
    assert status.report.reason == "rollback requested by alice: players report desyncs"
    assert status.report.compensation == before_switch(OLD_TASK_DEFINITION)
    assert_rolled_back_to_blue(aws)
    assert_blue_untouched(aws)
    assert not {"set_active_color", "switch_traffic"} & set(aws.names())


async def test_rollback_abandons_a_retrying_health_check_instead_of_waiting_for_it(
    time_skipping: WorkflowEnvironment,
) -> None:
    throttled = [
        ApplicationError("ecs.DescribeServices: ThrottlingException", type="ThrottlingException")
        for _ in range(7)
    ]
    aws = FakeAws(failures={"check_health": throttled})
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.WAITING_FOR_HEALTH,
        BlueGreenDeployment.rollback_signal,
        ROLLBACK,
    )

    assert status.state == State.ROLLED_BACK
    assert status.report is not None and status.report.phase == Phase.WAITING_FOR_HEALTH
    assert status.report.error_type == "RollbackRequested"
    # The health check was still being retried (7 throttles before a success) when it was dropped.
    assert status.health_checks == 0
    assert aws.names().count("check_health") < 8
    assert_rolled_back_to_blue(aws)


async def test_rollback_during_the_bake_moves_traffic_back_before_anything_else(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(alarms={"game-5xx": ["OK"]})
    bake = {"duration": "1h", "poll_interval": "1m", "alarms": ["game-5xx"]}
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.BAKING,
        BlueGreenDeployment.rollback_signal,
        ROLLBACK,
        request(bake=bake),
        between_activities=True,
    )

    assert status.state == State.ROLLED_BACK
    assert status.report is not None and status.report.phase == Phase.BAKING
    assert status.report.compensation == after_switch(OLD_TASK_DEFINITION)
    names = aws.names()
    back = len(names) - 1 - names[::-1].index("switch_traffic")
    assert names[back + 1 :] == ["set_active_color", "scale_to_zero", "set_color_version"]
    assert_rolled_back_to_blue(aws)
    assert status.active_color_after == "blue"
    assert "count_connections" not in names


async def test_rollback_during_the_drain_moves_traffic_back_to_the_old_color(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(connections=[7])
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.DRAINING,
        BlueGreenDeployment.rollback_signal,
        ROLLBACK,
        between_activities=True,
    )

    assert status.state == State.ROLLED_BACK
    assert status.report is not None and status.report.phase == Phase.DRAINING
    assert_rolled_back_to_blue(aws)


async def test_rollback_once_cleanup_started_is_ignored_and_the_old_color_goes(
    time_skipping: WorkflowEnvironment,
) -> None:
    # One throttled scale-down keeps the deployment in cleaning_up for a one-second retry.
    throttled = ApplicationError(
        "ecs.UpdateService: ThrottlingException", type="ThrottlingException"
    )
    aws = FakeAws(failures={"scale_to_zero": [throttled]})
    status = await signalled_in(
        time_skipping.client,
        aws,
        Phase.CLEANING_UP,
        BlueGreenDeployment.rollback_signal,
        ROLLBACK,
        request(connections=None),
    )

    assert status.state == State.SUCCEEDED
    assert status.rollback is None
    assert any(
        w.startswith("ignored rollback from alice: blue is already being shut down")
        and "deploy version 1 again instead" in w
        for w in status.warnings
    )
    assert aws.active == "green" and aws.desired == {"blue": 0, "green": 2}


async def test_an_alarm_during_the_bake_rolls_back_automatically(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(alarms={"game-5xx": ["OK", "OK", "OK", "ALARM"], "game-latency": ["OK"]})
    bake = {"duration": "10m", "poll_interval": "1m", "alarms": ["game-5xx", "game-latency"]}
    status = await deploy(time_skipping.client, aws, request(bake=bake))

    assert status.state == State.ROLLED_BACK
    assert status.report is not None
    assert (status.report.phase, status.report.error_type) == (Phase.BAKING, "AlarmFired")
    assert status.report.reason == "alarm game-5xx is in ALARM: game-5xx is ALARM"
    # The first answer was read at setup; then OK twice in the bake, then ALARM.
    assert status.alarm_checks == 3
    assert_rolled_back_to_blue(aws)
    assert Phase.DRAINING not in phases(status)


async def test_a_quiet_bake_lasts_its_duration_then_the_drain_starts(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(alarms={"game-5xx": ["OK"]})
    bake = {"duration": "10m", "poll_interval": "1m", "alarms": ["game-5xx"]}
    status = await deploy(time_skipping.client, aws, request(bake=bake))

    assert status.state == State.SUCCEEDED
    assert phases(status)[4:8] == [Phase.SWITCHING, Phase.BAKING, Phase.DRAINING, Phase.CLEANING_UP]
    entered = {e.phase: e.entered_at for e in status.phases}
    baked = entered[Phase.DRAINING] - entered[Phase.BAKING]
    assert timedelta(minutes=10) <= baked < timedelta(minutes=10, seconds=1)
    assert status.alarm_checks == 11
    assert status.bake_until == entered[Phase.BAKING] + timedelta(minutes=10)


async def test_without_shutdown_the_deployment_ends_after_the_bake(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    req = deployment_request(environment(bake={"duration": "5m"}), shutdown_inactive_cluster=False)
    status = await deploy(time_skipping.client, aws, req)

    assert status.state == State.SUCCEEDED
    assert phases(status)[-3:] == [Phase.SWITCHING, Phase.BAKING, Phase.DONE]
    assert aws.desired == {"blue": 2, "green": 2}


async def test_an_alarm_already_firing_refuses_to_start(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws(alarms={"game-5xx": ["ALARM"]})
    bake = {"duration": "10m", "alarms": ["game-5xx"]}
    status = await deploy(time_skipping.client, aws, request(bake=bake))

    assert status.state == State.FAILED
    assert status.report is not None
    assert (status.report.phase, status.report.error_type) == (Phase.SETTING_UP, "AlarmFiring")
    assert "game-5xx" in status.report.reason
    assert aws.names() == ["read_color_state", "read_router_weights", "read_alarm_states"]


async def test_a_missing_alarm_fails_before_anything_changes(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    bake = {"duration": "10m", "alarms": ["no-such-alarm"]}
    status = await deploy(time_skipping.client, aws, request(bake=bake))

    assert status.state == State.FAILED
    assert status.report is not None and status.report.error_type == "AlarmNotFound"
    assert "no alarm named no-such-alarm" in status.report.reason
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 0
