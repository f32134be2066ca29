"""The one-region workflow's branches, on the time-skipping server with fake activities."""

from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from models.deployment import Phase, State
from tests.factories import deployment_request, environment
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.driving import (
    assert_blue_untouched,
    deploy,
    phases,
    running_worker,
    start,
)
from tests.workflows.fake_aws import OLD_TASK_DEFINITION, FakeAws
from workflows.deployment import BlueGreenDeployment


async def test_happy_path_switches_drains_and_shuts_down_the_old_color(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(connections=[5, 3, 1, 0])
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.SUCCEEDED
    assert phases(status) == [
        Phase.SETTING_UP,
        Phase.DEPLOYING,
        Phase.WAITING_FOR_HEALTH,
        Phase.TESTING,
        Phase.SWITCHING,
        Phase.DRAINING,
        Phase.CLEANING_UP,
        Phase.DONE,
    ]
    assert (status.active_color_before, status.target_color, status.active_color_after) == (
        "blue",
        "green",
        "green",
    )
    assert status.versions_before == {"blue": "1", "green": None}
    assert status.versions_after == {"blue": "1", "green": "2"}
    # AWS as it is left: green serves version 2, blue is at zero.
    assert aws.active == "green"
    assert aws.weights == {"blue": 0, "green": 100}
    assert aws.desired == {"blue": 0, "green": 2}
    assert aws.versions == {"blue": "1", "green": "2"}
    assert aws.task_definitions["green"] == status.task_definition_arn
    # Green's task definition is read before anything changes it: a failure would put it back.
    names = aws.names()
    assert names.index("read_task_definition") < names.index("register_task_definition")
    assert status.task_definition_before == OLD_TASK_DEFINITION
    # SSM first, then the router, then the old clients hear they should reconnect.
    assert names.index("set_active_color") < names.index("switch_traffic")
    assert names.index("switch_traffic") < names.index("notify_reconnect")
    notify = dict(aws.calls)["notify_reconnect"]
    assert (notify.url, notify.version_header, notify.version) == (
        "http://127.0.0.1:18081/reconnect",
        "X-Game-Version",
        "1",
    )
    # The drain loop polled until the count reached zero, and only then cleaned up.
    assert status.connection_checks == 4
    assert status.last_connections is not None and status.last_connections.count == 0
    assert names.index("scale_to_zero") > max(
        i for i, name in enumerate(names) if name == "count_connections"
    )
    assert [r.passed for r in status.integration_results] == [True]
    assert status.warnings == []


async def test_without_switch_the_new_version_waits_on_the_inactive_color(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    status = await deploy(
        time_skipping.client, aws, deployment_request(switch_active_cluster=False)
    )

    assert status.state == State.SUCCEEDED
    assert phases(status)[-2:] == [Phase.TESTING, Phase.DONE]
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 2
    assert aws.versions["green"] == "2"
    assert not {"set_active_color", "switch_traffic", "scale_to_zero"} & set(aws.names())


async def test_without_shutdown_the_old_color_keeps_running_after_the_switch(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(connections=[9])
    status = await deploy(
        time_skipping.client, aws, deployment_request(shutdown_inactive_cluster=False)
    )

    assert status.state == State.SUCCEEDED
    assert phases(status)[-2:] == [Phase.SWITCHING, Phase.DONE]
    assert aws.active == "green"
    assert aws.weights == {"blue": 0, "green": 100}
    assert aws.desired == {"blue": 2, "green": 2}
    assert not {"count_connections", "scale_to_zero"} & set(aws.names())


async def test_health_timeout_fails_and_scales_the_new_color_back_to_zero(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(healthy_after=None)
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.WAITING_FOR_HEALTH
    assert status.report.error_type == "HealthTimeout"
    assert "green was not healthy after 10m" in status.report.reason
    assert "running 0 of 2" in status.report.reason
    # One check at the start and one every 15 s until the 10 minutes are up.
    assert status.health_checks == aws.health_checks == 41
    assert status.last_health is not None and not status.last_health.healthy
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 0
    assert aws.versions["green"] is None
    # Read before deploying, put back: green runs what SSM says it runs (nothing new).
    assert status.task_definition_before == OLD_TASK_DEFINITION
    assert aws.task_definitions["green"] == OLD_TASK_DEFINITION
    assert status.report.compensation == before_switch(OLD_TASK_DEFINITION)
    assert not {"set_active_color", "switch_traffic"} & set(aws.names())


async def test_failed_integration_checks_fail_before_any_traffic_moves(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(checks_pass=False)
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.TESTING
    assert status.report.error_type == "IntegrationChecksFailed"
    assert "1 of 1 integration checks failed: health: HTTP 503" in status.report.reason
    assert [(r.name, r.passed, r.status) for r in status.integration_results] == [
        ("health", False, 503)
    ]
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 0


async def test_a_two_hour_drain_times_out_in_test_seconds_and_then_shuts_down(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(connections=[7])
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.SUCCEEDED
    # 2 h polled every 30 s: one check at the start, then one per interval.
    assert status.connection_checks == aws.connection_checks == 241
    assert status.warnings == [
        "drain timed out after 2h with 7 clients still on blue; shut down as configured"
    ]
    assert aws.desired == {"blue": 0, "green": 2}
    drain = status.phases[phases(status).index(Phase.DRAINING)].entered_at
    cleanup = status.phases[phases(status).index(Phase.CLEANING_UP)].entered_at
    assert timedelta(hours=2) <= cleanup - drain < timedelta(hours=2, minutes=1)


async def test_a_failure_after_the_switch_moves_traffic_back_first(
    time_skipping: WorkflowEnvironment,
) -> None:
    denied = ApplicationError(
        "ModifyListener: AccessDenied: not authorized to perform elasticloadbalancing:ModifyListener",
        type="AccessDenied",
        non_retryable=True,
    )
    aws = FakeAws(failures={"switch_traffic": [denied]})
    status = await deploy(time_skipping.client, aws)

    # Once the switch has begun, putting the old color back is a rollback, not a failure.
    assert status.state == State.ROLLED_BACK
    assert status.report is not None
    assert status.report.phase == Phase.SWITCHING
    assert status.report.error_type == "AccessDenied"
    assert "not authorized to perform elasticloadbalancing:ModifyListener" in status.report.reason
    names = aws.names()
    failed_switch = names.index("switch_traffic")
    assert names[failed_switch + 1 :] == [
        "switch_traffic",
        "set_active_color",
        "scale_to_zero",
        "set_color_version",
    ]
    assert status.report.compensation == after_switch(OLD_TASK_DEFINITION)
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 0
    assert aws.task_definitions["green"] == OLD_TASK_DEFINITION
    assert status.active_color_after == "blue"


async def test_a_router_that_disagrees_with_ssm_stops_before_anything_changes(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(weights={"blue": 50, "green": 50})
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.SETTING_UP
    assert status.report.error_type == "RouterMismatch"
    assert "blue=50 green=50" in status.report.reason
    assert aws.names() == ["read_color_state", "read_router_weights"]
    assert status.report.compensation == []


async def test_a_permanent_aws_error_fails_at_once_with_aws_message(
    time_skipping: WorkflowEnvironment,
) -> None:
    missing = ApplicationError(
        "UpdateService: ClusterNotFoundException: Cluster not found.",
        type="ClusterNotFoundException",
        non_retryable=True,
    )
    aws = FakeAws(failures={"update_service": [missing]})
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.DEPLOYING
    assert status.report.error_type == "ClusterNotFoundException"
    assert "ClusterNotFoundException: Cluster not found." in status.report.reason
    assert aws.names().count("update_service") == 1
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 0


async def test_a_throttled_call_is_retried_and_the_deployment_goes_on(
    time_skipping: WorkflowEnvironment,
) -> None:
    throttled = ApplicationError("DescribeServices: ThrottlingException: Rate exceeded")
    aws = FakeAws(failures={"check_health": [throttled, throttled]})
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.SUCCEEDED
    assert aws.names().count("check_health") == 3


async def test_a_failed_cleanup_does_not_move_traffic_back_to_a_color_going_down(
    time_skipping: WorkflowEnvironment,
) -> None:
    denied = ApplicationError(
        "UpdateService: AccessDeniedException: denied",
        type="AccessDeniedException",
        non_retryable=True,
    )
    aws = FakeAws(failures={"scale_to_zero": [denied]})
    status = await deploy(time_skipping.client, aws)

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.CLEANING_UP
    assert status.report.compensation == []
    assert aws.active == "green"
    assert aws.weights == {"blue": 0, "green": 100}


async def test_without_connections_config_the_old_color_shuts_down_after_the_switch(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws()
    request = deployment_request(environment(connections=None, integration_checks=[]))
    status = await deploy(time_skipping.client, aws, request)

    assert status.state == State.SUCCEEDED
    assert Phase.DRAINING not in phases(status)
    assert Phase.TESTING not in phases(status)
    assert aws.desired == {"blue": 0, "green": 2}


async def test_cancelling_restores_production_and_ends_cancelled(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(healthy_after=None)
    async with running_worker(time_skipping.client, aws) as task_queue:
        handle = await start(time_skipping.client, task_queue)
        # The first checks run in the deployment itself (INLINE_CHECKS of them before a child
        # takes over); the fake counts them as they happen.
        while aws.health_checks < 3:
            await time_skipping.sleep(15)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert isinstance(failure.value.cause, CancelledError)
        status = await handle.query(BlueGreenDeployment.status)

    assert status.state == State.ROLLED_BACK
    assert status.report is not None
    assert status.report.reason == "the deployment was cancelled"
    assert_blue_untouched(aws)
    assert aws.desired["green"] == 0
