"""MultiRegionDeployment with the real activities against moto, in two and in three regions.

moto keeps regions apart: the demo's resources are made once per region (the same service,
clusters and SSM names; their own target groups and listener, given through ``in_region``), and
each test reads every region's SSM, listener weights and ECS services at the end.
"""

from collections.abc import AsyncIterator

import boto3
import pytest
from temporalio.testing import WorkflowEnvironment

from local.aws_resources import DemoResources
from local.state import mismatches
from models.deployment import Phase, State
from models.multi_region import MultiRegionStatus
from tests.workflows.compensation import after_switch
from tests.workflows.driving_regions import (
    REGIONS,
    region,
    regions_outcome,
    regions_request,
    start_regions,
)
from tests.workflows.on_moto import (
    LONG_BAKE,
    TASKS,
    VERSION,
    assert_back_on_blue,
    assert_deployed_to_green,
    demo_resources,
    environment_in_regions,
    real_worker,
    unique_service,
)

COUNTS = pytest.mark.parametrize("count", [2, 3], ids=["2 regions", "3 regions"])


@pytest.fixture(scope="module")
async def task_queue(time_skipping: WorkflowEnvironment, aws: dict[str, str]) -> AsyncIterator[str]:
    """One worker for the module: every workflow, the real activities (in threads)."""
    async with real_worker(time_skipping.client) as queue:
        yield queue


def resources_in(count: int) -> list[DemoResources]:
    """The demo's resources in the first ``count`` REGIONS, under one service of this test's."""
    service = unique_service()
    return [demo_resources(r, service) for r in REGIONS[:count]]


def never_healthy(resources: DemoResources) -> None:
    """Green's targets gone from its target group: moto's ECS runs it, the ALB never will."""
    elbv2 = boto3.client("elbv2", region_name=resources.region)
    group = resources.target_group_arns["green"]
    targets = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    elbv2.deregister_targets(TargetGroupArn=group, Targets=[t["Target"] for t in targets])


async def deploy(
    time_skipping: WorkflowEnvironment,
    task_queue: str,
    resources: list[DemoResources],
    **env: object,
) -> MultiRegionStatus:
    """Deploy version 2 to every region of ``resources`` and return the parent's final status."""
    request = regions_request(
        environment_in_regions(resources, **env), service=resources[0].service
    )
    return await regions_outcome(await start_regions(time_skipping.client, task_queue, request))


@COUNTS
async def test_deploys_to_every_region(
    time_skipping: WorkflowEnvironment, task_queue: str, count: int
) -> None:
    resources = resources_in(count)
    status = await deploy(time_skipping, task_queue, resources)

    assert status.state == State.SUCCEEDED
    env = environment_in_regions(resources)
    for made in resources:
        deployed = region(status, made.region)
        assert deployed.state == State.SUCCEEDED
        # Each region registered its own revision, in its own region.
        assert deployed.task_definition_arn is not None
        assert f":{made.region}:" in deployed.task_definition_arn
        state = assert_deployed_to_green(env.for_region(made.region), deployed)
        assert mismatches(state, "green", VERSION, TASKS) == []
        assert state.services["blue"].task_definition_arn == made.task_definition_arn


@COUNTS
async def test_a_health_timeout_in_one_region_rolls_every_region_back_to_as_before(
    time_skipping: WorkflowEnvironment, task_queue: str, count: int
) -> None:
    resources = resources_in(count)
    *healthy, failing = resources
    never_healthy(failing)
    status = await deploy(
        time_skipping,
        task_queue,
        resources,
        health={"timeout": "30s", "poll_interval": "5s"},
        bake=LONG_BAKE,
    )

    assert status.state == State.FAILED
    assert status.reason is not None
    assert status.reason.startswith(f"{failing.region}: green was not healthy after 30s")
    failed = region(status, failing.region)
    assert failed.state == State.FAILED
    assert failed.report is not None
    assert failed.report.error_type == "HealthTimeout"
    assert f"0 of {TASKS} targets healthy" in failed.report.reason
    # The others had switched and were baking: traffic back first, then SSM, then green.
    for made in healthy:
        rolled_back = region(status, made.region)
        assert rolled_back.state == State.ROLLED_BACK
        assert rolled_back.rollback is not None
        assert rolled_back.rollback.by == status.deployment_id
        assert rolled_back.report is not None
        assert rolled_back.report.phase == Phase.BAKING
        assert rolled_back.report.compensation == after_switch(made.task_definition_arn)
    env = environment_in_regions(resources)
    for made in resources:
        assert_back_on_blue(env.for_region(made.region), made)
