"""Fixtures for the activity tests: AWS resources on the session's moto server, built with boto3."""

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from temporalio.testing import ActivityEnvironment

from local.aws_resources import create_network
from models.colors import COLORS, Color
from tests.activities.aws_resources import (
    REGION,
    TASK_DEFINITION,
    Alb,
    Mesh,
    Pair,
    unique,
    weighted_forward,
)

if TYPE_CHECKING:
    from mypy_boto3_appmesh import AppMeshClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_ssm import SSMClient


@pytest.fixture
def env() -> ActivityEnvironment:
    """Runs an activity function as the worker would: ``env.run(fn, arg)``."""
    return ActivityEnvironment()


@pytest.fixture
def ssm(aws: dict[str, str]) -> "SSMClient":
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def ecs(aws: dict[str, str]) -> "ECSClient":
    return boto3.client("ecs", region_name=REGION)


@pytest.fixture
def elbv2(aws: dict[str, str]) -> "ElasticLoadBalancingv2Client":
    return boto3.client("elbv2", region_name=REGION)


@pytest.fixture
def appmesh(aws: dict[str, str]) -> "AppMeshClient":
    return boto3.client("appmesh", region_name=REGION)


@pytest.fixture
def prefix(ssm: "SSMClient") -> str:
    """An SSM prefix where blue is active on version 1 and green has no version."""
    name = f"/{unique('game')}/prod"
    ssm.put_parameter(Name=f"{name}/current_active_color", Value="blue", Type="String")
    ssm.put_parameter(Name=f"{name}/blue/version", Value="1", Type="String")
    return name


@pytest.fixture
def pair(prefix: str, ecs: "ECSClient") -> Pair:
    """Both colors' clusters and services, desired 0 (moto then reports rollout COMPLETED)."""
    family = unique("game")
    arn = ecs.register_task_definition(family=family, **TASK_DEFINITION)["taskDefinition"][
        "taskDefinitionArn"
    ]
    clusters: dict[Color, str] = {color: unique(f"game-{color}") for color in COLORS}
    for cluster in clusters.values():
        ecs.create_cluster(clusterName=cluster)
        ecs.create_service(cluster=cluster, serviceName="game", taskDefinition=arn, desiredCount=0)
    return Pair(prefix, family, clusters, "game", arn)


@pytest.fixture
def vpc(aws: dict[str, str]) -> tuple[str, list[str]]:
    """A VPC and two subnets in different zones, as an ALB needs."""
    subnets, _, vpc_id = create_network(REGION)
    return vpc_id, subnets


@pytest.fixture
def target_groups(
    vpc: tuple[str, list[str]], elbv2: "ElasticLoadBalancingv2Client"
) -> dict[Color, str]:
    """One empty IP target group per color."""
    return {
        color: elbv2.create_target_group(
            Name=unique(color), Protocol="HTTP", Port=8080, VpcId=vpc[0], TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        for color in COLORS
    }


@pytest.fixture
def alb(
    vpc: tuple[str, list[str]],
    target_groups: dict[Color, str],
    elbv2: "ElasticLoadBalancingv2Client",
) -> Alb:
    """A listener sending all to blue (sticky for 300 s), and a rule for /api/* doing the same."""
    lb = elbv2.create_load_balancer(Name=unique("game"), Subnets=vpc[1])["LoadBalancers"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[weighted_forward(target_groups, 100, 0, Enabled=True, DurationSeconds=300)],
    )["Listeners"][0]
    rule = elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
        Actions=[weighted_forward(target_groups, 100, 0)],
    )["Rules"][0]
    return Alb(listener["ListenerArn"], rule["RuleArn"], target_groups)


@pytest.fixture
def mesh(appmesh: "AppMeshClient") -> Mesh:
    """A mesh with a virtual node per color and a virtual router; the tests add the route."""
    name = unique("mesh")
    appmesh.create_mesh(meshName=name)
    listener: Any = {"portMapping": {"port": 8080, "protocol": "http"}}
    nodes: dict[Color, str] = {color: f"game-{color}" for color in COLORS}
    for color, node in nodes.items():
        appmesh.create_virtual_node(
            meshName=name,
            virtualNodeName=node,
            spec={
                "listeners": [listener],
                "serviceDiscovery": {"dns": {"hostname": f"{color}.game.local"}},
            },
        )
    appmesh.create_virtual_router(
        meshName=name, virtualRouterName="game", spec={"listeners": [listener]}
    )
    return Mesh(name, "game", nodes)
