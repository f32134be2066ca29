"""Workflows on the time-skipping server with the real activities against moto: shared helpers.

A worker runs every workflow and the real ``ALL_ACTIVITIES`` (boto3 to the session's moto
server); the demo's AWS resources are made per test under a service name of its own; the
assertions read what is left in AWS (SSM, the ALB listener's weights, both colors' services).
"""

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from local.aws_resources import DemoResources, create_demo_resources, placeholder_targets
from local.state import EnvironmentState, read_state
from models.colors import Color
from models.config import EnvironmentConfig
from models.deployment import DeploymentStatus
from models.observations import RouterWeights
from runtime.heartbeats import ActivityHeartbeats
from workflows import ALL_WORKFLOWS

if TYPE_CHECKING:
    pass

VERSION = "2"
TASKS = 2
"""Tasks per color: blue starts with them on version 1."""
NOWHERE = "http://127.0.0.1:9"
"""Nothing listens there: the colors' URL where no test calls it, and ECS's to make it fail."""
LONG_BAKE = {"duration": "1h", "poll_interval": "1m"}
"""A bake that is still on when a test acts (polling runs in real time)."""


@asynccontextmanager
async def real_worker(client: Client) -> AsyncIterator[str]:
    """A worker with every workflow and the real activities (in threads); yields its queue."""
    queue = f"on-moto-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=ALL_WORKFLOWS,
            activities=ALL_ACTIVITIES,
            activity_executor=executor,
            interceptors=[ActivityHeartbeats()],
        ):
            yield queue


def unique_service() -> str:
    """A service name (and so SSM prefix, cluster and ALB names) no other test uses."""
    return f"g{uuid.uuid4().hex[:8]}"


def demo_resources(region: str, service: str | None = None) -> DemoResources:
    """The demo's AWS resources in ``region``: blue active with TASKS tasks, green at zero;
    no ECS stand-in runs here, so placeholder targets let the health gate pass."""
    resources = create_demo_resources(
        region,
        blue_url=NOWHERE,
        green_url=NOWHERE,
        service=service or unique_service(),
        desired_count=TASKS,
    )
    placeholder_targets(resources)
    return resources


def environment_fields(resources: DemoResources, *, blue_url: str = NOWHERE) -> dict[str, Any]:
    """The environment ``resources`` make, as deploy.toml keys: no bake, connections or checks."""
    r = resources

    def color(name: Color, url: str) -> dict[str, Any]:
        return {
            "cluster": r.clusters[name],
            "service": r.service,
            "target_group_arn": r.target_group_arns[name],
            "url": url,
        }

    return {
        "region": r.region,
        "ssm_prefix": r.ssm_prefix,
        "task_family": r.task_family,
        "container_name": r.container_name,
        "desired_count": r.desired_count,
        "blue": color("blue", blue_url),
        "green": color("green", NOWHERE),
        "router": {"kind": "alb", "listener_arn": r.listener_arn},
        "health": {"timeout": "2m", "poll_interval": "1s"},
        "bake": {"duration": "0s"},
    }


def environment(
    resources: DemoResources, *, blue_url: str = NOWHERE, **overrides: Any
) -> EnvironmentConfig:
    """The environment ``resources`` make, no bake, connections or checks unless overridden."""
    return EnvironmentConfig.model_validate(
        environment_fields(resources, blue_url=blue_url) | overrides
    )


def environment_in_regions(resources: list[DemoResources], **overrides: Any) -> EnvironmentConfig:
    """One environment over the regions of ``resources`` (one wave; same service everywhere):
    the keys describe the first region, ``in_region`` gives each other one its own ARNs."""
    first, *others = resources
    fields = environment_fields(first) | {
        "regions": [r.region for r in resources],
        "in_region": {other.region: _own_arns(other) for other in others},
    }
    return EnvironmentConfig.model_validate(fields | overrides)


def _own_arns(resources: DemoResources) -> dict[str, Any]:
    """What differs in ``resources``' region: the colors' target groups and the listener."""
    return {
        "blue": {"target_group_arn": resources.target_group_arns["blue"]},
        "green": {"target_group_arn": resources.target_group_arns["green"]},
        "router": {"listener_arn": resources.listener_arn},
    }


def assert_blue_serves_as_before(state: EnvironmentState, resources: DemoResources) -> None:
    """Production untouched: blue active in SSM on version 1, all traffic, its tasks, its
    task definition."""
    assert state.ssm.active_color == "blue"
    assert state.ssm.versions["blue"] == "1"
    assert state.weights == RouterWeights(blue=100, green=0)
    blue = state.services["blue"]
    assert (blue.desired_count, blue.running_count) == (TASKS, TASKS)
    assert blue.task_definition_arn == resources.task_definition_arn


def assert_back_on_blue(
    env: EnvironmentConfig, resources: DemoResources, green_version: str | None = None
) -> EnvironmentState:
    """Production as before the deployment, and green back at zero with its old SSM version, on
    the task definition it had before (the demo's first revision): ECS and SSM agree."""
    state = read_state(env)
    assert_blue_serves_as_before(state, resources)
    green = state.services["green"]
    assert (green.desired_count, green.task_definition_arn) == (0, resources.task_definition_arn)
    assert state.ssm.versions["green"] == green_version
    return state


def assert_deployed_to_green(env: EnvironmentConfig, status: DeploymentStatus) -> EnvironmentState:
    """Green active on version 2 (the new revision) with all the traffic."""
    state = read_state(env)
    assert state.ssm.active_color == "green"
    assert state.ssm.versions == {"blue": "1", "green": VERSION}
    assert state.weights == RouterWeights(blue=0, green=100)
    assert state.services["green"].desired_count == TASKS
    assert state.services["green"].task_definition_arn == status.task_definition_arn
    return state
