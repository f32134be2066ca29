"""Rollback, alarms, approval timeouts and SwitchBack with the real activities against moto.

The time-skipping server runs the workflows; a worker runs the real ``ALL_ACTIVITIES`` (boto3
to the session's moto server, HTTP to an in-process sample game server), and each test checks
what is left in AWS afterwards: SSM, the ALB listener's weights, both colors' ECS services.

Time only skips while a test awaits a result. To act "in phase X" a test polls the ``status``
query (real time) until the deployment is in X, sends the message as a signal (the
time-skipping server has no updates; signals run the same handlers), then awaits the end, which
skips the long timers (a 1 h bake, a 2 h drain) in milliseconds.
"""

import asyncio
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from local.aws_resources import DemoResources
from local.processes import free_port, game_server
from local.state import EnvironmentState, mismatches, read_state
from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from models.messages import ApproveRequest, RollbackRequest
from models.observations import RouterWeights, task_definition_name
from models.switch import SwitchRequest, SwitchResult
from tests.factories import ENVIRONMENT
from tests.players import StayingPlayers
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.driving import (
    Handle,
    outcome,
    phases,
    start,
    wait_for_phase,
    wait_until_between_activities,
)
from tests.workflows.on_moto import (
    LONG_BAKE,
    NOWHERE,
    TASKS,
    VERSION,
    assert_back_on_blue,
    assert_blue_serves_as_before,
    assert_deployed_to_green,
    demo_resources,
    environment,
    real_worker,
)
from workflows.deployment import BlueGreenDeployment
from workflows.switch_back import SwitchBack

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_ssm import SSMClient

REGION = "us-west-2"
ROLLBACK = RollbackRequest(reason="players report desyncs", by="alice")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def task_queue(time_skipping: WorkflowEnvironment, aws: dict[str, str]) -> AsyncIterator[str]:
    """One worker for the module: every workflow, the real activities (in threads)."""
    async with real_worker(time_skipping.client) as queue:
        yield queue


@pytest.fixture
def resources(aws: dict[str, str]) -> DemoResources:
    """The demo's AWS resources under a service name (and so SSM prefix) of this test's own."""
    return demo_resources(REGION)


@pytest.fixture
def deployments(
    time_skipping: WorkflowEnvironment, task_queue: str, resources: DemoResources
) -> "Deployments":
    return Deployments(time_skipping.client, task_queue, resources)


@dataclass(frozen=True)
class BlueGame:
    url: str
    """Blue's sample game server."""
    players: StayingPlayers
    """4 sessions on version 1 who stay, told to reconnect or not."""

    def connections(self, version: str) -> int:
        """The server's count of sessions on ``version``, as the drain asks it."""
        request = urllib.request.Request(
            f"{self.url}/connections", headers={"X-Game-Version": version}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            count: int = json.loads(answer.read())["connections"]
            return count


@pytest.fixture
def blue_game() -> Iterator[BlueGame]:
    """Blue's sample game server with 4 players on version 1 who stay."""
    with (
        game_server(free_port(), "blue", "1") as url,
        StayingPlayers(url, "1", count=4) as players,
    ):
        yield BlueGame(url, players)


@pytest.fixture
def cloudwatch(aws: dict[str, str]) -> "CloudWatchClient":
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def ecs(aws: dict[str, str]) -> "ECSClient":
    return boto3.client("ecs", region_name=REGION)


# --- helpers -------------------------------------------------------------------------------------


def request(env: EnvironmentConfig, resources: DemoResources, **options: Any) -> DeploymentRequest:
    """Deploy version 2 of the test's service to ``env``."""
    return DeploymentRequest(
        service=resources.service,
        environment=resources.environment,
        version=VERSION,
        image=f"{resources.service}:{VERSION}",
        target=env,
        **options,
    )


@dataclass(frozen=True)
class Deployments:
    """Deployments and switches of one test's service, on the module's worker."""

    client: Client
    task_queue: str
    resources: DemoResources

    async def start(self, env: EnvironmentConfig, **options: Any) -> Handle:
        """Start deploying version 2 to ``env`` (``options``: DeploymentRequest fields)."""
        return await start(self.client, self.task_queue, request(env, self.resources, **options))

    async def run(self, env: EnvironmentConfig, **options: Any) -> DeploymentStatus:
        """Run one deployment to its end, untouched; its final status."""
        return await outcome(await self.start(env, **options))

    async def switch_back(self, env: EnvironmentConfig) -> SwitchResult:
        """Run SwitchBack on ``env`` to its end."""
        return await self.client.execute_workflow(
            SwitchBack.run,
            SwitchRequest(
                service=self.resources.service,
                environment=self.resources.environment,
                target=env,
                requested_by="alice",
                reason="green misbehaves",
            ),
            id=f"switch-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )

    async def switch_refused(self, env: EnvironmentConfig) -> ApplicationError:
        """Run SwitchBack, which must be refused; the refusal."""
        with pytest.raises(WorkflowFailureError) as caught:
            await self.switch_back(env)
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "SwitchRefused"
        return cause


async def roll_back(handle: Handle) -> DeploymentStatus:
    """Ask a running deployment to roll back (alice's ROLLBACK); its final status."""
    await handle.signal(BlueGreenDeployment.rollback_signal, ROLLBACK)
    return await outcome(handle)


async def wait_for_warning(handle: Handle, start: str, seconds: float = 10) -> None:
    """Poll the status query until a warning starts with ``start``."""
    warnings: list[str] = []
    for _ in range(int(seconds / 0.05)):
        warnings = (await handle.query(BlueGreenDeployment.status)).warnings
        if any(w.startswith(start) for w in warnings):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} has no warning {start!r}; warnings: {warnings}")


def assert_rolled_back(status: DeploymentStatus, phase: Phase, compensation: list[str]) -> None:
    assert status.state == State.ROLLED_BACK
    assert status.rollback is not None
    assert (status.rollback.by, status.rollback.phase) == ("alice", phase)
    assert status.report is not None
    assert status.report.phase == phase
    assert status.report.error_type == "RollbackRequested"
    assert status.report.reason == "rollback requested by alice: players report desyncs"
    assert status.report.compensation == compensation
    assert status.report.compensation_errors == []


def summary(state: EnvironmentState) -> tuple[Any, ...]:
    """What a test compares before and after: SSM, weights, each color's counts and revision."""
    services = {
        color: (seen.desired_count, seen.running_count, seen.task_definition_arn)
        for color, seen in state.services.items()
    }
    return state.ssm, state.weights, services


def revisions(ecs: "ECSClient", resources: DemoResources) -> list[str]:
    """The task family's revisions, oldest first."""
    return ecs.list_task_definitions(familyPrefix=resources.task_family, sort="ASC")[
        "taskDefinitionArns"
    ]


# --- rollback by phase --------------------------------------------------------------------------


async def test_rollback_while_awaiting_approval_scales_green_back_and_leaves_blue_untouched(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)
    handle = await deployments.start(env, require_approval=True)
    await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    waiting = read_state(env)
    status = await roll_back(handle)

    # Green was deployed and recorded in SSM while it waited; nothing about blue changed.
    assert waiting.services["green"].desired_count == TASKS
    assert waiting.ssm.versions["green"] == VERSION
    assert_blue_serves_as_before(waiting, resources)
    assert_rolled_back(
        status, Phase.AWAITING_APPROVAL, before_switch(resources.task_definition_arn)
    )
    assert Phase.SWITCHING not in phases(status)
    assert_back_on_blue(env, resources)


async def test_rollback_during_the_bake_moves_traffic_back_before_ssm_and_the_scale_down(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources, bake=LONG_BAKE)
    handle = await deployments.start(env)
    await wait_for_phase(handle, Phase.BAKING)
    baking = read_state(env)
    status = await roll_back(handle)

    # The switch had happened, with blue still running.
    assert (baking.ssm.active_color, baking.weights.serving()) == ("green", "green")
    assert baking.services["blue"].desired_count == TASKS
    # after_switch is that order: traffic, then SSM, then green's scale-down and version.
    assert_rolled_back(status, Phase.BAKING, after_switch(resources.task_definition_arn))
    assert status.active_color_after == "blue"
    assert_back_on_blue(env, resources)


async def test_rollback_during_the_drain_puts_traffic_back_on_blue_with_its_players(
    deployments: Deployments, resources: DemoResources, blue_game: BlueGame
) -> None:
    env = environment(
        resources,
        blue_url=blue_game.url,
        connections=ENVIRONMENT["connections"],
        drain=ENVIRONMENT["drain"],
    )
    handle = await deployments.start(env)
    await wait_for_phase(handle, Phase.DRAINING)
    # After the first count, on the drain's timer: see wait_until_between_activities.
    await wait_until_between_activities(handle)
    status = await roll_back(handle)

    assert status.last_connections is not None
    assert (status.last_connections.version, status.last_connections.count) == ("1", 4)
    assert_rolled_back(status, Phase.DRAINING, after_switch(resources.task_definition_arn))
    assert_back_on_blue(env, resources)
    assert blue_game.connections("1") == 4
    assert blue_game.players.received() == {"type": "reconnect"}  # told at the switch


async def test_rollback_once_cleanup_started_is_ignored_with_a_warning(
    deployments: Deployments, resources: DemoResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(resources)
    handle = await deployments.start(env, require_approval=True)
    await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    # Hold the deployment in its cleanup: ECS is unreachable (a retryable connection error, so
    # scale_to_zero retries) until the rollback has been turned down. After the approval only
    # the cleanup calls ECS; AWS_ENDPOINT_URL_ECS is boto3's own per-service endpoint setting.
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", NOWHERE)
    await handle.signal(BlueGreenDeployment.approve_signal, ApproveRequest(by="bob"))
    await wait_for_phase(handle, Phase.CLEANING_UP)
    await handle.signal(BlueGreenDeployment.rollback_signal, ROLLBACK)
    await wait_for_warning(handle, "ignored rollback from alice: ")
    monkeypatch.delenv("AWS_ENDPOINT_URL_ECS")
    status = await outcome(handle)

    assert status.state == State.SUCCEEDED
    assert (status.rollback, status.report) == (None, None)
    [warning] = [w for w in status.warnings if w.startswith("ignored rollback from alice: ")]
    assert "blue is already being shut down" in warning
    state = assert_deployed_to_green(env, status)
    assert mismatches(state, "green", VERSION, TASKS) == []


async def test_rollback_after_the_end_is_refused_and_changes_nothing(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)
    handle = await deployments.start(env)
    status = await outcome(handle)

    with pytest.raises(RPCError) as caught:
        await handle.signal(BlueGreenDeployment.rollback_signal, ROLLBACK)

    assert caught.value.status == RPCStatusCode.NOT_FOUND
    assert status.state == State.SUCCEEDED
    assert (await handle.query(BlueGreenDeployment.status)).rollback is None
    assert mismatches(assert_deployed_to_green(env, status), "green", VERSION, TASKS) == []


# --- alarms --------------------------------------------------------------------------------------


async def test_an_alarm_during_the_bake_rolls_back_to_blue(
    deployments: Deployments, resources: DemoResources, cloudwatch: "CloudWatchClient"
) -> None:
    [alarm] = resources.alarm_names
    env = environment(resources, bake={**LONG_BAKE, "alarms": [alarm]})
    handle = await deployments.start(env)
    await wait_for_phase(handle, Phase.BAKING)
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above 10")
    status = await outcome(handle)

    assert status.state == State.ROLLED_BACK
    assert status.rollback is None
    assert status.report is not None
    assert status.report.phase == Phase.BAKING
    assert status.report.error_type == "AlarmFired"
    assert alarm in status.report.reason
    assert "5xx above 10" in status.report.reason
    assert status.report.compensation == after_switch(resources.task_definition_arn)
    assert [(a.name, a.state) for a in status.last_alarms] == [(alarm, "ALARM")]
    assert_back_on_blue(env, resources)


async def test_an_alarm_already_firing_refuses_the_deployment_before_touching_anything(
    deployments: Deployments,
    resources: DemoResources,
    cloudwatch: "CloudWatchClient",
    ecs: "ECSClient",
) -> None:
    [alarm] = resources.alarm_names
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above 10")
    env = environment(resources, bake={**LONG_BAKE, "alarms": [alarm]})
    status = await deployments.run(env)

    assert status.state == State.FAILED
    assert status.report is not None
    assert status.report.phase == Phase.SETTING_UP
    assert status.report.error_type == "AlarmFiring"
    assert f"{alarm}: 5xx above 10" in status.report.reason
    assert status.report.compensation == []
    assert phases(status) == [Phase.SETTING_UP, Phase.COMPENSATING, Phase.DONE]
    state = assert_back_on_blue(env, resources)
    assert state.services["green"].task_definition_arn == resources.task_definition_arn
    assert revisions(ecs, resources) == [resources.task_definition_arn]


# --- approval timeout ----------------------------------------------------------------------------


async def test_approval_timeout_aborts_and_restores_green_when_configured_to(
    deployments: Deployments, resources: DemoResources
) -> None:
    # Green ran 0.9 once: its SSM version goes back to that, not away.
    ssm: SSMClient = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=f"{resources.ssm_prefix}/green/version", Value="0.9", Type="String")
    env = environment(resources, approval={"timeout": "10m", "on_timeout": "abort"})
    status = await deployments.run(env, require_approval=True)

    assert status.state == State.FAILED
    assert status.approval is None
    assert status.report is not None
    assert status.report.phase == Phase.AWAITING_APPROVAL
    assert status.report.error_type == "ApprovalTimeout"
    assert "nobody approved within 10m" in status.report.reason
    assert status.report.compensation == [
        f"scaled green to 0, back on {task_definition_name(resources.task_definition_arn)}",
        "SSM version of green back to 0.9",
    ]
    assert status.versions_after == {"blue": "1", "green": "0.9"}
    assert_back_on_blue(env, resources, green_version="0.9")


async def test_approval_timeout_proceeds_when_configured_to(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources, approval={"timeout": "10m", "on_timeout": "proceed"})
    status = await deployments.run(env, require_approval=True)

    assert status.state == State.SUCCEEDED
    assert status.approval is not None
    assert status.approval.by == "timeout"
    assert any("nobody approved within 10m" in w for w in status.warnings)
    state = assert_deployed_to_green(env, status)
    assert mismatches(state, "green", VERSION, TASKS) == []


# --- switch back ---------------------------------------------------------------------------------


async def test_switch_back_to_blue_left_running(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)
    status = await deployments.run(env, shutdown_inactive_cluster=False)
    assert status.state == State.SUCCEEDED
    assert assert_deployed_to_green(env, status).services["blue"].desired_count == TASKS

    result = await deployments.switch_back(env)

    assert (result.from_color, result.to_color) == ("green", "blue")
    assert result.health.healthy
    state = read_state(env)
    assert state.ssm.active_color == "blue"
    assert state.weights == RouterWeights(blue=100, green=0)
    assert state.ssm.versions == {"blue": "1", "green": VERSION}
    assert state.services["green"].desired_count == TASKS
    assert state.services["green"].task_definition_arn == status.task_definition_arn
    assert_blue_serves_as_before(state, resources)


async def test_switch_back_is_refused_once_blue_is_shut_down(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)
    status = await deployments.run(env)
    before = summary(assert_deployed_to_green(env, status))

    refusal = await deployments.switch_refused(env)

    assert "blue is not running (desired count 0)" in refusal.message
    assert summary(read_state(env)) == before


async def test_switch_back_is_refused_when_blue_is_unhealthy(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)
    status = await deployments.run(env, shutdown_inactive_cluster=False)
    # moto keeps running == desired; what it can show is blue's targets gone from its group.
    elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=REGION)
    blue_group = resources.target_group_arns["blue"]
    targets = elbv2.describe_target_health(TargetGroupArn=blue_group)["TargetHealthDescriptions"]
    elbv2.deregister_targets(TargetGroupArn=blue_group, Targets=[t["Target"] for t in targets])
    before = summary(assert_deployed_to_green(env, status))

    refusal = await deployments.switch_refused(env)

    assert f"blue is not healthy: 0 of {TASKS} targets healthy" in refusal.message
    assert summary(read_state(env)) == before
    assert read_state(env).services["blue"].desired_count == TASKS
