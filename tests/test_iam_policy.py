"""iam/worker-policy.json against moto's IAM enforcement: the worker needs every statement, and
the policy names the calls the worker makes and nothing else.

A moto server of the module's own runs with ``INITIAL_NO_AUTH_ACTION_COUNT``: its first
requests (creating an admin user and its key) go unchecked, then every request must be signed
by an IAM user's key and is checked against that user's policies. The demo's resources are made
with the admin's key; a ``worker`` user holds only the policy file, its placeholders filled in
with those resources' names (``filled_policy``), and the real activities run with its key:
deployments on the time-skipping server end as they should, and without a statement the
smallest operation that needs it fails with AccessDenied.

What moto 5 checks, and so what this module can show (``moto/core/authorization.py``,
``moto/iam/access_control.py``):

- Actions only. For ECS, SSM, Elastic Load Balancing and CloudWatch moto authorizes every
  request against the resource ``*``, so a statement whose Resource is an ARN pattern never
  matches: the user gets the policy with each Resource widened to ``*`` (``as_moto_checks``).
  ``test_the_filled_resources_cover_what_the_worker_touches`` checks the ARN patterns instead,
  against the ARNs the worker acts on, with IAM's wildcard rules.
- moto names CloudWatch's actions by the API's signing name, ``monitoring:DescribeAlarms``; AWS
  by ``cloudwatch:``. ``as_moto_checks`` renames them.
- Conditions are not checked: moto passes no context keys, and a condition on a missing key
  lets the statement through (``ecs:CreateAction``, ``iam:PassedToService``).
- Calls that AWS authorizes as part of another one are not checked: RegisterTaskDefinition
  asks for neither ``ecs:TagResource`` (statement TagNewTaskDefinitionRevisions) nor
  ``iam:PassRole`` (PassTaskRolesToEcs). The demo's task definition has no tags or roles either.
- App Mesh requests fail moto's signature check (SignatureDoesNotMatch) whatever the policy
  (WeightAppMeshRoutes); the demo routes with the ALB.

Those three statements are listed in NOT_SHOWN_ON_MOTO, and the test that removes each
statement in turn checks that the list is exactly the rest.
"""

import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.alarms import read_alarm_states
from activities.analysis import measure_metric
from activities.aws import _cached_client
from activities.ecs import check_health, register_task_definition
from activities.ssm import ACTIVE_COLOR, VERSION, parameter_name, read_color_state
from activities.traffic import read_router_weights, switch_traffic
from local.aws_resources import DemoResources
from local.processes import ROOT, environ, free_port, game_server, moto_server
from local.state import read_state
from models.activities import (
    AlarmsInput,
    CheckHealthInput,
    RegisterTaskDefinitionInput,
    RouterInput,
    ServiceRef,
    SsmInput,
    SwitchTrafficInput,
)
from models.analysis import AnalysisMetric, CloudWatchQuery, MeasureInput
from models.config import EnvironmentConfig
from models.deployment import Phase, State
from models.observations import RouterWeights
from tests.factories import ENVIRONMENT
from tests.players import StayingPlayers
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.conftest import TEST_SERVER, register_search_attributes
from tests.workflows.driving import outcome, wait_for_phase, wait_until_between_activities
from tests.workflows.on_moto import (
    LONG_BAKE,
    TASKS,
    assert_back_on_blue,
    assert_deployed_to_green,
    demo_resources,
    environment,
    real_worker,
)
from tests.workflows.test_rollback_on_moto import Deployments, assert_rolled_back, roll_back

pytestmark = pytest.mark.timeout(120)

REGION = "us-west-2"
POLICY_FILE = ROOT / "iam" / "worker-policy.json"
WORKER = "bluegreen-worker"
UNCHECKED_ACTIONS = 3
"""CreateUser, PutUserPolicy and CreateAccessKey of the admin: moto checks every later one."""
NOT_SHOWN_ON_MOTO = {
    "TagNewTaskDefinitionRevisions": "moto does not ask for ecs:TagResource on a registration",
    "PassTaskRolesToEcs": "moto does not ask for iam:PassRole on a registration",
    "WeightAppMeshRoutes": "moto's signature check refuses App Mesh requests",
}
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


# --- the policy ----------------------------------------------------------------------------------


def load_balancer_name(load_balancer_arn: str) -> str:
    """``game-prod`` of ``arn:…:loadbalancer/app/game-prod/50dc6c495c0c9188``."""
    return load_balancer_arn.split(":loadbalancer/app/")[1].split("/")[0]


def filled_policy(resources: DemoResources, without: str | None = None) -> dict[str, Any]:
    """The policy file with every YOUR_* placeholder replaced by ``resources``' names, as the
    Terraform example fills it in; the statement whose Sid is ``without`` left out. The demo
    has no task roles or mesh: those get names of the service's own."""
    names = {
        "YOUR_TASK_FAMILY": resources.task_family,
        "YOUR_BLUE_CLUSTER": resources.clusters["blue"],
        "YOUR_GREEN_CLUSTER": resources.clusters["green"],
        "YOUR_TASK_ROLE": f"{resources.service}-task",
        "YOUR_TASK_EXECUTION_ROLE": f"{resources.service}-task-execution",
        "YOUR_PREFIX": resources.ssm_prefix.lstrip("/"),
        "YOUR_LOAD_BALANCER": load_balancer_name(resources.load_balancer_arn),
        "YOUR_MESH": f"{resources.service}-mesh",
    }
    text = POLICY_FILE.read_text()
    for placeholder, name in names.items():
        text = text.replace(placeholder, name)
    assert "YOUR_" not in text
    policy: dict[str, Any] = json.loads(text)
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != without]
    return policy


def as_moto_checks(policy: dict[str, Any]) -> dict[str, Any]:
    """``policy`` as moto can evaluate it: every Resource ``*`` (moto checks ECS, SSM, ELB and
    CloudWatch requests against ``*``), CloudWatch's actions under moto's ``monitoring:``."""
    return {
        **policy,
        "Statement": [
            {
                **statement,
                "Action": [
                    action.replace("cloudwatch:", "monitoring:") for action in actions(statement)
                ],
                "Resource": "*",
            }
            for statement in policy["Statement"]
        ],
    }


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)


def resource_patterns(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return [found] if isinstance(found, str) else list(found)


def allowed(policy: dict[str, Any], action: str, arn: str) -> bool:
    """Whether a statement of ``policy`` allows ``action`` on ``arn`` (IAM's wildcards: ``*``
    any characters, ``/`` included, ``?`` one); conditions aside."""

    def matches(pattern: str) -> bool:
        regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
        return re.fullmatch(regex, arn) is not None

    return any(
        action in actions(s) and any(matches(p) for p in resource_patterns(s))
        for s in policy["Statement"]
    )


def operations_in_activities() -> set[str]:
    """Every AWS operation the activities call, as IAM names it: ``ecs:UpdateService``…"""
    iam_prefix = {"elbv2": "elasticloadbalancing"}
    found = set()
    for path in Path(ROOT / "activities").rglob("*.py"):
        for service, operation in re.findall(r'aws_call\("(\w+)\.(\w+)"\)', path.read_text()):
            found.add(f"{iam_prefix.get(service, service)}:{operation}")
    return found


# --- moto with IAM, its admin and the worker user -----------------------------------------------


@contextmanager
def credentials(key: dict[str, str]) -> Iterator[None]:
    """boto3 in this process (the activities' threads included) signs with ``key``."""
    saved = {
        name: os.environ.get(name)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ["AWS_ACCESS_KEY_ID"] = key["AccessKeyId"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]
    # A client keeps the credentials it was made with, boto3's default session too.
    _cached_client.cache_clear()
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _cached_client.cache_clear()
        boto3.DEFAULT_SESSION = None


def iam() -> Any:
    """IAM with the process's credentials (no stubs for IAM's client are installed)."""
    return boto3.client("iam", region_name=REGION)


@pytest.fixture(scope="module")
def admin() -> Iterator[dict[str, str]]:
    """A moto server that checks IAM, and its admin's key, the module's default credentials;
    the worker user exists, with no policy yet."""
    settings = {"INITIAL_NO_AUTH_ACTION_COUNT": str(UNCHECKED_ACTIONS)}
    with moto_server(env=settings) as env, environ(env):
        iam().create_user(UserName="admin")
        iam().put_user_policy(
            UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY)
        )
        key = iam().create_access_key(UserName="admin")["AccessKey"]
        with credentials(key):
            iam().create_user(UserName=WORKER)
            yield key


@pytest.fixture(scope="module")
def worker_key(admin: dict[str, str]) -> dict[str, str]:
    key: dict[str, str] = iam().create_access_key(UserName=WORKER)["AccessKey"]
    return key


def grant(policy: dict[str, Any]) -> None:
    """The worker user's only policy is now ``policy`` as moto checks it (with admin's key)."""
    iam().put_user_policy(
        UserName=WORKER, PolicyName="worker", PolicyDocument=json.dumps(as_moto_checks(policy))
    )


@pytest.fixture
def resources(admin: dict[str, str]) -> DemoResources:
    """The demo's resources under a service of the test's own; the worker may act on them."""
    made = demo_resources(REGION)
    grant(filled_policy(made))
    return made


@pytest.fixture(scope="module")
async def time_skipping(admin: dict[str, str]) -> AsyncIterator[WorkflowEnvironment]:
    from temporalio.contrib.pydantic import pydantic_data_converter

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
async def task_queue(time_skipping: WorkflowEnvironment) -> AsyncIterator[str]:
    async with real_worker(time_skipping.client) as queue:
        yield queue


@pytest.fixture
def deployments(
    time_skipping: WorkflowEnvironment,
    task_queue: str,
    resources: DemoResources,
    worker_key: dict[str, str],
) -> Iterator[Deployments]:
    """Deployments of the test's service whose activities sign with the worker user's key."""
    with credentials(worker_key):
        yield Deployments(time_skipping.client, task_queue, resources)


# --- what the policy names -----------------------------------------------------------------------


def test_the_policy_names_the_calls_the_activities_make_and_no_others(
    resources: DemoResources,
) -> None:
    named = {a for s in filled_policy(resources)["Statement"] for a in actions(s)}
    # Authorized by AWS as part of RegisterTaskDefinition (tags, task roles), not called.
    assert named == operations_in_activities() | {"ecs:TagResource", "iam:PassRole"}


def test_the_filled_resources_cover_what_the_worker_touches(resources: DemoResources) -> None:
    policy = filled_policy(resources)
    account = resources.service_arns["blue"].split(":")[4]
    region, prefix = resources.region, resources.ssm_prefix
    revision_2 = resources.task_definition_arn.rsplit(":", 1)[0] + ":2"
    rule = resources.listener_arn.replace(":listener/", ":listener-rule/") + "/0123456789abcdef"
    mesh = f"arn:aws:appmesh:{region}:{account}:mesh/{resources.service}-mesh"
    parameters = [
        f"arn:aws:ssm:{region}:{account}:parameter{parameter_name(prefix, *path)}"
        for path in ((ACTIVE_COLOR,), ("blue", VERSION), ("green", VERSION))
    ]
    touched = [
        ("ecs:TagResource", revision_2),
        ("iam:PassRole", f"arn:aws:iam::{account}:role/{resources.service}-task"),
        ("iam:PassRole", f"arn:aws:iam::{account}:role/{resources.service}-task-execution"),
        ("elasticloadbalancing:ModifyListener", resources.listener_arn),
        ("elasticloadbalancing:ModifyRule", rule),
        ("appmesh:UpdateRoute", f"{mesh}/virtualRouter/game-router/route/game-route"),
        *(("ecs:UpdateService", arn) for arn in resources.service_arns.values()),
        *(("ssm:PutParameter", arn) for arn in parameters),
    ]
    assert [(a, arn) for a, arn in touched if not allowed(policy, a, arn)] == []

    # Another service's, family's, prefix's or load balancer's are not the worker's.
    other = resources.service
    elsewhere = [
        ("ecs:UpdateService", resources.service_arns["blue"].replace(f"/{other}-", "/other-")),
        ("ecs:TagResource", revision_2.replace(f"/{other}:", "/other:")),
        ("ssm:PutParameter", parameters[0].replace(f"parameter/{other}/", "parameter/other/")),
        ("elasticloadbalancing:ModifyListener", resources.listener_arn.replace(other, "other")),
        ("iam:PassRole", f"arn:aws:iam::{account}:role/admin"),
    ]
    assert [(a, arn) for a, arn in elsewhere if allowed(policy, a, arn)] == []


# --- deployments with the worker user's key ------------------------------------------------------


async def test_a_deployment_succeeds(deployments: Deployments, resources: DemoResources) -> None:
    bake = {"duration": "10m", "poll_interval": "1m", "alarms": resources.alarm_names}
    env = environment(resources, bake=bake)
    status = await deployments.run(env)

    assert status.state == State.SUCCEEDED, status.report
    assert_deployed_to_green(env, status)


async def test_a_rollback_before_the_switch(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources)
    handle = await deployments.start(env, require_approval=True)
    await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    status = await roll_back(handle)

    assert_rolled_back(
        status, Phase.AWAITING_APPROVAL, before_switch(resources.task_definition_arn)
    )
    assert_back_on_blue(env, resources)


async def test_a_rollback_during_the_bake(
    deployments: Deployments, resources: DemoResources
) -> None:
    env = environment(resources, bake=LONG_BAKE)
    handle = await deployments.start(env)
    await wait_for_phase(handle, Phase.BAKING)
    status = await roll_back(handle)

    assert_rolled_back(status, Phase.BAKING, after_switch(resources.task_definition_arn))
    assert_back_on_blue(env, resources)


async def test_a_rollback_during_the_drain(
    deployments: Deployments, resources: DemoResources
) -> None:
    with (
        game_server(free_port(), "blue", "1") as url,
        StayingPlayers(url, "1", count=2),
    ):
        env = environment(
            resources,
            blue_url=url,
            connections=ENVIRONMENT["connections"],
            drain=ENVIRONMENT["drain"],
        )
        handle = await deployments.start(env)
        await wait_for_phase(handle, Phase.DRAINING)
        await wait_until_between_activities(handle)
        status = await roll_back(handle)

    assert_rolled_back(status, Phase.DRAINING, after_switch(resources.task_definition_arn))
    assert_back_on_blue(env, resources)


async def test_an_alarm_during_the_bake_rolls_back(
    deployments: Deployments, resources: DemoResources, admin: dict[str, str]
) -> None:
    [alarm] = resources.alarm_names
    env = environment(resources, bake={**LONG_BAKE, "alarms": [alarm]})
    handle = await deployments.start(env)
    await wait_for_phase(handle, Phase.BAKING)
    cloudwatch = boto3.client(
        "cloudwatch",
        region_name=REGION,
        aws_access_key_id=admin["AccessKeyId"],
        aws_secret_access_key=admin["SecretAccessKey"],
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above 10")
    status = await outcome(handle)

    assert status.state == State.ROLLED_BACK
    assert status.report is not None
    assert (status.report.phase, status.report.error_type) == (Phase.BAKING, "AlarmFired")
    assert status.report.compensation == after_switch(resources.task_definition_arn)
    assert status.report.compensation_errors == []
    assert_back_on_blue(env, resources)


async def test_a_switch_back(deployments: Deployments, resources: DemoResources) -> None:
    env = environment(resources)
    status = await deployments.run(env, shutdown_inactive_cluster=False)
    assert status.state == State.SUCCEEDED, status.report

    result = await deployments.switch_back(env)

    assert (result.from_color, result.to_color) == ("green", "blue")
    state = read_state(env)
    assert (state.ssm.active_color, state.weights) == ("blue", RouterWeights(blue=100, green=0))
    assert state.services["green"].desired_count == TASKS


# --- each statement is needed --------------------------------------------------------------------


def operation_needing(
    sid: str, env: EnvironmentConfig, resources: DemoResources
) -> Callable[[], Any]:
    """The smallest thing the worker does that needs statement ``sid``: an activity call."""
    blue = ServiceRef.of(env.region, env.ssm_prefix, "blue", env.blue)
    router = {"region": env.region, "router": env.router, "blue": env.blue, "green": env.green}
    operations: dict[str, Callable[[], Any]] = {
        "TaskDefinitions": lambda: register_task_definition(
            RegisterTaskDefinitionInput(
                region=env.region,
                task_family=env.task_family,
                container_name=env.container_name,
                image=f"{resources.service}:2",
            )
        ),
        "ColorServices": lambda: check_health(CheckHealthInput(target=blue)),
        "ColorStateInSsm": lambda: read_color_state(
            SsmInput(region=env.region, ssm_prefix=env.ssm_prefix)
        ),
        "ReadLoadBalancers": lambda: read_router_weights(RouterInput(**router)),
        "WeightListeners": lambda: switch_traffic(SwitchTrafficInput(**router, to_color="green")),
        "WatchAlarms": lambda: read_alarm_states(
            AlarmsInput(region=env.region, alarm_names=resources.alarm_names)
        ),
        "ReadAnalysisMetrics": lambda: measure_metric(
            MeasureInput(
                region=env.region,
                color="green",
                metric=AnalysisMetric(
                    name="requests",
                    provider="cloudwatch",
                    query=CloudWatchQuery(metric="RequestCount"),
                    min=0,
                ),
            )
        ),
    }
    return operations[sid]


def sids() -> list[str]:
    return [s["Sid"] for s in json.loads(POLICY_FILE.read_text())["Statement"]]


@pytest.mark.parametrize("sid", [s for s in sids() if s not in NOT_SHOWN_ON_MOTO])
def test_without_the_statement_the_worker_is_denied(
    sid: str, resources: DemoResources, worker_key: dict[str, str]
) -> None:
    env = environment(resources)
    operation = operation_needing(sid, env, resources)

    grant(filled_policy(resources, without=sid))
    with credentials(worker_key), pytest.raises(ApplicationError) as caught:
        operation()
    assert "AccessDenied" in caught.value.message
    assert caught.value.non_retryable

    grant(filled_policy(resources))
    with credentials(worker_key):
        operation()


def test_every_statement_is_shown_needed_or_listed_as_not_shown_on_moto() -> None:
    assert set(NOT_SHOWN_ON_MOTO) < set(sids())
