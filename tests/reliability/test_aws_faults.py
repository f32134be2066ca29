"""AWS faults: throttling, 5xx, slow and lost answers, access denied, a missing cluster.

Each test runs a real deployment: ``BlueGreenDeployment`` on the time-skipping server, the real
activities in a worker, boto3 through a :class:`FaultProxy` to moto. The deployment's
environment has a short bake watching the demo's 5xx alarm, so every AWS service is called.

Who retries what:

- **botocore: nothing.** ``activities/aws.py``'s ``CLIENT_CONFIG`` makes exactly one attempt
  (standard mode, ``total_max_attempts=1``): every request the proxy sees carries
  ``amz-sdk-request: attempt=1; max=1``, and a throttled call comes back to the activity at once.
- **Temporal: the whole activity.** ``aws_call`` turns throttling codes, 5xx, 429 and connection
  errors into retryable ``ApplicationError``s; ``CALL_RETRY`` then waits 1 s, 2 s, 4 s, …
  (Temporal timers, which the time-skipping server skips) up to 8 attempts. A retry runs the
  whole activity again, so the calls before the failing one are repeated (``update_service``
  reads SSM's active color each time).
- **Nobody, for the rest**: AccessDenied, ClusterNotFoundException and every other 4xx is
  non-retryable, one attempt, with AWS's own message in the deployment's failure report.
"""

import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.logs import LogfmtFormatter, fields
from local.aws_resources import DemoResources
from local.processes import environ
from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from models.observations import task_definition_name
from tests.reliability.fault_proxy import ROLE, FaultProxy, Rule
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.conftest import time_skipping  # noqa: F401 - the session's test server
from tests.workflows.driving import Handle, outcome, start
from tests.workflows.on_moto import (
    VERSION,
    assert_back_on_blue,
    assert_deployed_to_green,
    demo_resources,
    environment_fields,
    real_worker,
)

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

REGION = "us-west-2"
ONE_BOTOCORE_ATTEMPT = {"attempt=1; max=1"}
"""The ``amz-sdk-request`` header of every request: botocore never retries by itself."""
UNDISTURBED_CALLS = Counter(
    {
        "ssm.GetParameters": 3,  # read_color_state; update_service's and scale_to_zero's guard
        "elbv2.DescribeListeners": 2,  # read_router_weights, switch_traffic
        "cloudwatch.DescribeAlarms": 4,  # before deploying; the bake's checks at 0, 5 and 10 s
        "ecs.DescribeTaskDefinition": 1,
        "ecs.RegisterTaskDefinition": 1,
        "ecs.UpdateService": 2,  # update_service, scale_to_zero
        "ssm.PutParameter": 2,  # green's version, the active color
        "ecs.DescribeServices": 2,  # green's task definition before deploying; health (moto is
        # healthy at the first check)
        "elbv2.DescribeTargetHealth": 1,
        "elbv2.ModifyListener": 1,
    }
)
"""The AWS requests of a deployment nothing disturbs."""
WRITES = {"elbv2.ModifyListener", "ssm.PutParameter", "ssm.DeleteParameter", "ecs.UpdateService"}


def denied_message(iam_action: str) -> str:
    """AWS's message when the worker's role may not call ``iam_action``."""
    return (
        f"User: {ROLE} is not authorized to perform: {iam_action} because no identity-based"
        f" policy allows the {iam_action} action"
    )


def backoff(retries: int) -> float:
    """Seconds CALL_RETRY waits in all before retry number ``retries``: 1, 2, 4, … up to 30."""
    return float(sum(min(2**n, 30) for n in range(retries)))


# --- running deployments through the proxy --------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One deployment through the proxy, as it ended."""

    status: DeploymentStatus
    attempts: dict[str, list[int]]
    """Per activity type, the attempt each of its executions ended on, in order."""
    waits: dict[str, list[float]]
    """Per activity type and execution, seconds from scheduled to its last attempt's start, on
    the server's clock: the retry backoff, which the time-skipping server skips."""
    counts: Counter[str]
    """AWS requests per action."""
    sdk_requests: set[str]
    virtual_seconds: float
    """From start to close on the server's clock, which skips timers (retry backoff too)."""
    real_seconds: float

    @property
    def skipped_seconds(self) -> float:
        """About how long the server skipped ahead (timers: retry backoff, polls): its clock's
        run time less the real one. Under 0.5 means no timer at all."""
        return self.virtual_seconds - self.real_seconds


@dataclass(frozen=True)
class Deployments:
    """Deployments of version 2 of one service, on the module's worker, through the proxy."""

    client: Client
    task_queue: str
    proxy: FaultProxy

    async def run(self, env: EnvironmentConfig, resources: DemoResources, *faults: Rule) -> Run:
        """Deploy to ``env`` with ``faults`` injected; how it went."""
        self.proxy.reset()
        self.proxy.add(*faults)
        request = DeploymentRequest(
            service=resources.service,
            environment=resources.environment,
            version=VERSION,
            image=f"{resources.service}:{VERSION}",
            target=env,
        )
        began = time.monotonic()
        # Only the deployment goes through the proxy: the tests read the state straight from moto.
        with environ({"AWS_ENDPOINT_URL": self.proxy.url}):
            handle = await start(self.client, self.task_queue, request)
            status = await outcome(handle)
        real_seconds = time.monotonic() - began
        described = await handle.describe()
        assert described.close_time is not None
        attempts, waits = await executions(handle)
        return Run(
            status=status,
            attempts=attempts,
            waits=waits,
            counts=self.proxy.counts(),
            sdk_requests=self.proxy.sdk_requests(),
            virtual_seconds=(described.close_time - described.start_time).total_seconds(),
            real_seconds=real_seconds,
        )


async def executions(handle: Handle) -> tuple[dict[str, list[int]], dict[str, list[float]]]:
    """Per activity type, the attempt each execution ended on and how long after being
    scheduled that attempt started, from the workflow's history."""
    scheduled: dict[int, tuple[str, datetime]] = {}
    attempts: dict[str, list[int]] = defaultdict(list)
    waits: dict[str, list[float]] = defaultdict(list)
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            activity_type = event.activity_task_scheduled_event_attributes.activity_type
            scheduled[event.event_id] = (activity_type.name, event.event_time.ToDatetime())
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            name, at = scheduled[started.scheduled_event_id]
            attempts[name].append(started.attempt)
            waits[name].append((event.event_time.ToDatetime() - at).total_seconds())
    return dict(attempts), dict(waits)


def retried(
    attempts: dict[str, list[int]], activity: str, attempt: int, execution: int = 0
) -> dict[str, list[int]]:
    """``attempts`` with ``activity``'s ``execution`` (0: its first) ending on ``attempt``."""
    changed = {name: list(numbers) for name, numbers in attempts.items()}
    changed[activity][execution] = attempt
    return changed


def environment(resources: DemoResources, **overrides: Any) -> EnvironmentConfig:
    """The demo environment with a 10 s bake watching its 5xx alarm (checks at 0, 5, 10 s)."""
    bake = {"duration": "10s", "poll_interval": "5s", "alarms": resources.alarm_names}
    return EnvironmentConfig.model_validate(
        environment_fields(resources) | {"bake": bake} | overrides
    )


def final_state(env: EnvironmentConfig, status: DeploymentStatus) -> tuple[Any, ...]:
    """SSM, the weights and each color's counts, health and revision (new or not): what two
    deployments of different services can be compared by."""
    state = assert_deployed_to_green(env, status)
    services = {
        color: (seen.desired_count, seen.running_count, seen.healthy)
        for color, seen in state.services.items()
    }
    return state.ssm, state.weights, services


def warned(caplog: pytest.LogCaptureFixture, step: str) -> list[str]:
    """The worker's log lines of failed ``step`` calls, as it prints them."""
    formatter = LogfmtFormatter()
    return [
        formatter.format(record)
        for record in caplog.records
        if record.levelno == logging.WARNING and fields(record).get("step") == step
    ]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(aws: dict[str, str]) -> Iterator[FaultProxy]:
    """The fault proxy in front of the session's moto server."""
    with FaultProxy(aws["AWS_ENDPOINT_URL"]) as running:
        yield running


@pytest.fixture(scope="module")
async def deployments(
    time_skipping: WorkflowEnvironment,  # noqa: F811 - the fixture imported above
    proxy: FaultProxy,
) -> AsyncIterator[Deployments]:
    """One worker for the module: every workflow, the real activities (in threads)."""
    async with real_worker(time_skipping.client) as queue:
        yield Deployments(time_skipping.client, queue, proxy)


@pytest.fixture
def resources(aws: dict[str, str]) -> DemoResources:
    """The demo's AWS resources under a service name of this test's own: blue active on 1."""
    return demo_resources(REGION)


@pytest.fixture(scope="module")
async def undisturbed(deployments: Deployments, aws: dict[str, str]) -> tuple[Run, tuple[Any, ...]]:
    """A deployment nothing disturbs, and the state it ends in: what the others compare with."""
    resources = demo_resources(REGION)
    env = environment(resources)
    run = await deployments.run(env, resources)
    return run, final_state(env, run.status)


# --- nothing injected -----------------------------------------------------------------------------


async def test_an_undisturbed_deployment_calls_aws_once_per_step(
    undisturbed: tuple[Run, tuple[Any, ...]],
) -> None:
    run, _ = undisturbed

    assert run.status.state == State.SUCCEEDED
    assert run.counts == UNDISTURBED_CALLS
    assert all(attempt == 1 for numbers in run.attempts.values() for attempt in numbers)
    assert run.attempts["read_alarm_states"] == [1, 1, 1, 1]
    assert run.sdk_requests == ONE_BOTOCORE_ATTEMPT
    assert all(wait < 1 for waits in run.waits.values() for wait in waits)


# --- retried through ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "activity", "execution", "repeated"),
    [
        # update_service reads SSM's active color (its guard) before each UpdateService.
        pytest.param(
            Rule("ecs.UpdateService", "throttle", times=3),
            "update_service",
            0,
            ["ssm.GetParameters"],
            id="ecs.UpdateService",
        ),
        pytest.param(
            Rule("ssm.PutParameter", "throttle", times=2),
            "set_color_version",
            0,
            [],
            id="ssm.PutParameter",
        ),
        # switch_traffic reads the listener before each write.
        pytest.param(
            Rule("elbv2.ModifyListener", "throttle", times=3),
            "switch_traffic",
            0,
            ["elbv2.DescribeListeners"],
            id="elbv2.ModifyListener",
        ),
        # The first DescribeServices reads green's task definition before deploying.
        pytest.param(
            Rule("ecs.DescribeServices", "throttle", times=2, after=1),
            "check_health",
            0,
            [],
            id="ecs.DescribeServices",
        ),
        # The bake's first check (the first DescribeAlarms is before deploying).
        pytest.param(
            Rule("cloudwatch.DescribeAlarms", "throttle", times=2, after=1),
            "read_alarm_states",
            1,
            [],
            id="cloudwatch.DescribeAlarms",
        ),
    ],
)
async def test_throttling_is_retried_by_temporal_until_the_call_goes_through(
    deployments: Deployments,
    resources: DemoResources,
    undisturbed: tuple[Run, tuple[Any, ...]],
    caplog: pytest.LogCaptureFixture,
    fault: Rule,
    activity: str,
    execution: int,
    repeated: list[str],
) -> None:
    before, before_state = undisturbed
    env = environment(resources)
    retries = fault.times or 0

    run = await deployments.run(env, resources, fault)

    assert run.status.state == State.SUCCEEDED
    assert final_state(env, run.status) == before_state
    # botocore gave up at its first attempt; Temporal ran the activity once more per throttle.
    assert run.sdk_requests == ONE_BOTOCORE_ATTEMPT
    assert run.attempts == retried(before.attempts, activity, retries + 1, execution)
    # JSON services (ECS, SSM) say ThrottlingException; query ones (ELBv2, CloudWatch) Throttling.
    throttled = "ThrottlingException" if fault.action.startswith(("ecs", "ssm")) else "Throttling"
    answers = deployments.proxy.answers(fault.action)
    assert answers[fault.after : fault.after + retries + 1] == [throttled] * retries + [200]
    assert run.counts == before.counts + Counter({fault.action: retries}) + Counter(
        {action: retries for action in repeated}
    )
    # With Temporal's backoff in between: 1 s, then 2 s, … on the server's skipping clock.
    assert backoff(retries) <= run.waits[activity][execution] < backoff(retries) + 2
    lines = warned(caplog, fault.action)
    assert len(lines) == retries
    for attempt, line in enumerate(lines, start=1):
        assert f" error={throttled} activity={activity} attempt={attempt}" in line


async def test_throttling_for_all_eight_attempts_fails_and_production_stays_as_it_was(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)

    run = await deployments.run(env, resources, Rule("ecs.UpdateService", "throttle", times=8))

    assert run.status.state == State.FAILED
    report = run.status.report
    assert report is not None
    assert (report.phase, report.error_type) == (Phase.DEPLOYING, "ThrottlingException")
    assert (
        report.reason
        == "run version 2 on green: 2 tasks: ecs.UpdateService: ThrottlingException: Rate exceeded"
    )
    assert report.compensation == before_switch(resources.task_definition_arn)
    # CALL_RETRY's eight attempts with 1+2+4+8+16+30+30 = 91 s of backoff between them; then the
    # restore's UpdateService goes through.
    assert run.attempts["update_service"] == [8]
    assert run.attempts["scale_to_zero"] == [1]
    assert deployments.proxy.answers("ecs.UpdateService") == ["ThrottlingException"] * 8 + [200]
    assert backoff(7) <= run.waits["update_service"][0] < backoff(7) + 2
    assert_back_on_blue(env, resources)


async def test_server_errors_on_several_actions_are_retried_through(
    deployments: Deployments, resources: DemoResources, undisturbed: tuple[Run, tuple[Any, ...]]
) -> None:
    before, before_state = undisturbed
    env = environment(resources)
    faults = [
        Rule("ssm.GetParameters", "503", region=REGION),  # read_color_state
        Rule("elbv2.DescribeListeners", "500"),  # read_router_weights
        Rule("ecs.RegisterTaskDefinition", "500", times=2),
        Rule("ecs.DescribeServices", "503", after=1),  # check_health
        Rule("elbv2.ModifyListener", "503", times=2),
        Rule("cloudwatch.DescribeAlarms", "500", after=2),  # the bake's second check
    ]

    run = await deployments.run(env, resources, *faults)

    assert run.status.state == State.SUCCEEDED
    assert final_state(env, run.status) == before_state
    assert run.sdk_requests == ONE_BOTOCORE_ATTEMPT
    expected = before.attempts
    for activity, attempt, execution in [
        ("read_color_state", 2, 0),
        ("read_router_weights", 2, 0),
        ("register_task_definition", 3, 0),
        ("check_health", 2, 0),
        ("switch_traffic", 3, 0),
        ("read_alarm_states", 2, 2),
    ]:
        expected = retried(expected, activity, attempt, execution)
    assert run.attempts == expected
    # Each retry repeats its activity's calls up to the failing one.
    assert run.counts == before.counts + Counter(
        {
            "ssm.GetParameters": 1,
            "elbv2.DescribeListeners": 1 + 2,
            "ecs.DescribeTaskDefinition": 2,
            "ecs.RegisterTaskDefinition": 2,
            "ecs.DescribeServices": 1,
            "elbv2.ModifyListener": 2,
            "cloudwatch.DescribeAlarms": 1,
        }
    )
    assert deployments.proxy.answers("elbv2.ModifyListener") == ["ServiceUnavailable"] * 2 + [200]


async def test_answers_lost_after_aws_acted_are_retried_without_doing_anything_twice(
    deployments: Deployments, resources: DemoResources, undisturbed: tuple[Run, tuple[Any, ...]]
) -> None:
    before, before_state = undisturbed
    env = environment(resources)
    faults = [
        Rule(action, "lost")
        for action in (
            "ecs.RegisterTaskDefinition",
            "ecs.UpdateService",
            "ssm.PutParameter",
            "elbv2.ModifyListener",
        )
    ]

    run = await deployments.run(env, resources, *faults)

    assert run.status.state == State.SUCCEEDED
    assert final_state(env, run.status) == before_state
    expected = before.attempts
    for activity in (
        "register_task_definition",
        "update_service",
        "set_color_version",
        "switch_traffic",
    ):
        expected = retried(expected, activity, 2)
    assert run.attempts == expected
    # The second attempts found the revision registered and the weights written: no second
    # RegisterTaskDefinition or ModifyListener. UpdateService and PutParameter set the same
    # absolute values again.
    assert run.counts == before.counts + Counter(
        {
            "ecs.DescribeTaskDefinition": 1,
            "ssm.GetParameters": 1,
            "ecs.UpdateService": 1,
            "ssm.PutParameter": 1,
            "elbv2.DescribeListeners": 1,
        }
    )
    ecs: ECSClient = boto3.client("ecs", region_name=REGION)
    revisions = ecs.list_task_definitions(familyPrefix=resources.task_family)["taskDefinitionArns"]
    assert len(revisions) == 2


async def test_slow_answers_within_the_timeouts_are_waited_for_not_retried(
    deployments: Deployments, resources: DemoResources, undisturbed: tuple[Run, tuple[Any, ...]]
) -> None:
    before, before_state = undisturbed
    env = environment(resources)
    faults = [
        Rule("ecs.UpdateService", "slow", seconds=2),
        Rule("elbv2.ModifyListener", "slow", seconds=1),
    ]

    run = await deployments.run(env, resources, *faults)

    assert run.status.state == State.SUCCEEDED
    assert final_state(env, run.status) == before_state
    # Well inside botocore's 30 s read timeout and the activities' 60 s start-to-close timeout
    # (which the time-skipping server does not skip while an activity runs).
    assert run.real_seconds >= 3
    assert run.attempts == before.attempts
    assert run.counts == before.counts


# --- failing fast ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "iam_action", "activity", "phase", "green_changed"),
    [
        ("ssm.GetParameters", "ssm:GetParameters", "read_color_state", Phase.SETTING_UP, False),
        (
            "ecs.RegisterTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "register_task_definition",
            Phase.DEPLOYING,
            False,
        ),
        (
            "ssm.PutParameter",
            "ssm:PutParameter",
            "set_color_version",
            Phase.DEPLOYING,
            True,
        ),
    ],
    ids=["GetParameters", "RegisterTaskDefinition", "PutParameter"],
)
async def test_access_denied_before_the_switch_fails_at_once_with_awss_message(
    deployments: Deployments,
    resources: DemoResources,
    action: str,
    iam_action: str,
    activity: str,
    phase: Phase,
    green_changed: bool,
) -> None:
    env = environment(resources)

    # Denied every time, as a role without the permission is.
    run = await deployments.run(env, resources, Rule(action, "denied", times=None))

    assert run.status.state == State.FAILED
    report = run.status.report
    assert report is not None
    assert (report.phase, report.error_type) == (phase, "AccessDeniedException")
    assert report.reason.endswith(
        f": {action}: AccessDeniedException: {denied_message(iam_action)}"
    )
    assert report.compensation == (
        before_switch(resources.task_definition_arn) if green_changed else []
    )
    assert report.compensation_errors == []
    # One attempt, one request, no backoff timer; nothing else was retried either.
    assert run.attempts[activity][0] == 1
    assert all(attempt == 1 for numbers in run.attempts.values() for attempt in numbers)
    assert deployments.proxy.answers(action) == ["AccessDeniedException"]
    assert run.skipped_seconds < 0.5
    assert_back_on_blue(env, resources)


async def test_access_denied_on_every_update_service_leaves_production_as_it_was(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)

    run = await deployments.run(env, resources, Rule("ecs.UpdateService", "denied", times=None))

    assert run.status.state == State.FAILED
    report = run.status.report
    assert report is not None
    denied = f"ecs.UpdateService: AccessDeniedException: {denied_message('ecs:UpdateService')}"
    assert report.reason == f"run version 2 on green: 2 tasks: {denied}"
    # Green was never scaled up, but scaling it back is denied too: one attempt, not the 20 of
    # RESTORE_RETRY.
    assert report.compensation == []
    back_on = f", back on {task_definition_name(resources.task_definition_arn)}"
    assert report.compensation_errors == [
        f"scaled green to 0{back_on}: restore: scale green to 0{back_on}: {denied}"
    ]
    assert (run.attempts["update_service"], run.attempts["scale_to_zero"]) == ([1], [1])
    assert deployments.proxy.answers("ecs.UpdateService") == ["AccessDeniedException"] * 2
    assert run.skipped_seconds < 0.5
    assert_back_on_blue(env, resources)


async def test_access_denied_on_the_alarms_in_the_bake_rolls_back_traffic_first(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)

    # The check before deploying passes; the bake's first one is denied.
    run = await deployments.run(
        env, resources, Rule("cloudwatch.DescribeAlarms", "denied", after=1, times=None)
    )

    assert run.status.state == State.ROLLED_BACK
    report = run.status.report
    assert report is not None
    # CloudWatch's query-compatible code, from the x-amzn-query-error header.
    assert (report.phase, report.error_type) == (Phase.BAKING, "AccessDenied")
    assert report.reason.endswith(
        f"cloudwatch.DescribeAlarms: AccessDenied: {denied_message('cloudwatch:DescribeAlarms')}"
    )
    assert report.compensation == after_switch(resources.task_definition_arn)
    assert report.compensation_errors == []
    assert run.attempts["read_alarm_states"] == [1, 1]
    # After the denied read: traffic back first, then SSM, then green scaled down, its version.
    actions = deployments.proxy.actions()
    denied_at = len(actions) - 1 - actions[::-1].index("cloudwatch.DescribeAlarms")
    writes = [action for action in actions[denied_at:] if action in WRITES]
    assert writes == [
        "elbv2.ModifyListener",
        "ssm.PutParameter",
        "ecs.UpdateService",
        "ssm.DeleteParameter",
    ]
    assert_back_on_blue(env, resources)


async def test_a_missing_cluster_fails_at_once_with_awss_message(
    deployments: Deployments, resources: DemoResources
) -> None:
    green = environment_fields(resources)["green"] | {"cluster": f"{resources.service}-gone"}
    env = environment(resources, green=green)

    run = await deployments.run(env, resources)

    assert run.status.state == State.FAILED
    report = run.status.report
    assert report is not None
    # Found by the read of green's task definition, before anything was changed.
    assert (report.phase, report.error_type) == (Phase.SETTING_UP, "ClusterNotFoundException")
    missing = "ecs.DescribeServices: ClusterNotFoundException: Cluster not found."
    assert report.reason == f"read which task definition green runs: {missing}"
    assert (report.compensation, report.compensation_errors) == ([], [])
    # moto's own answer, once; nothing was registered or updated.
    assert deployments.proxy.answers("ecs.DescribeServices") == [400]
    assert run.attempts["read_task_definition"] == [1]
    assert not {"register_task_definition", "update_service"} & set(run.attempts)
    assert run.skipped_seconds < 0.5
    assert_back_on_blue(environment(resources), resources)


# --- a transient error the activities do not retry ------------------------------------------------


async def test_ssm_too_many_updates_at_the_switch_is_retried(
    deployments: Deployments, resources: DemoResources, undisturbed: tuple[Run, tuple[Any, ...]]
) -> None:
    before, before_state = undisturbed
    env = environment(resources)
    # Terraform writing the same parameter: "concurrent updates for a resource that supports
    # one update at a time" (PutParameter's documented TooManyUpdates, HTTP 400).
    busy = Rule("ssm.PutParameter", "error", code="TooManyUpdates", after=1)

    run = await deployments.run(env, resources, busy)

    # Today set_active_color fails at once and the deployment rolls back at the switch.
    assert run.status.state == State.SUCCEEDED, run.status.report
    assert final_state(env, run.status) == before_state
    assert run.attempts == retried(before.attempts, "set_active_color", 2)
