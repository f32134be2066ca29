"""What the activity tests build on moto, and the names they share (conftest.py has the fixtures)."""

import uuid
from dataclasses import dataclass
from typing import Any

from models.activities import ServiceRef
from models.colors import Color

REGION = "us-west-2"


def unique(kind: str) -> str:
    """A name no other test uses, e.g. ``game-3f2a9c1d``: the moto server lives all session."""
    return f"{kind}-{uuid.uuid4().hex[:8]}"


TASK_DEFINITION: dict[str, Any] = {
    "taskRoleArn": "arn:aws:iam::123456789012:role/game-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/game-execution",
    "networkMode": "awsvpc",
    "containerDefinitions": [
        {
            "name": "game",
            "image": "registry.example.com/game:1",
            "memory": 256,
            "essential": True,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "environment": [{"name": "MODE", "value": "prod"}],
        },
        {
            "name": "envoy",
            "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29",
            "memory": 128,
            "essential": True,
        },
    ],
    "volumes": [{"name": "scratch", "host": {"sourcePath": "/tmp/scratch"}}],
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
    "requiresCompatibilities": ["EC2"],
    "cpu": "512",
    "memory": "1024",
    "pidMode": "task",
    "ipcMode": "task",
    "proxyConfiguration": {
        "type": "APPMESH",
        "containerName": "envoy",
        "properties": [{"name": "AppPorts", "value": "8080"}],
    },
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "ephemeralStorage": {"sizeInGiB": 30},
    "tags": [{"key": "team", "value": "games"}],
}
"""Revision 1 of a family: as many of the fields ECS keeps per revision as moto stores."""


@dataclass(frozen=True)
class Pair:
    """Two colors of one service: a cluster each, one task family, blue active in SSM."""

    prefix: str
    family: str
    clusters: dict[Color, str]
    service: str
    task_definition_arn: str

    def ref(self, color: Color) -> ServiceRef:
        return ServiceRef(
            region=REGION,
            ssm_prefix=self.prefix,
            color=color,
            cluster=self.clusters[color],
            service=self.service,
        )


@dataclass(frozen=True)
class Alb:
    """A listener and a listener rule, both forwarding to the colors' target groups."""

    listener_arn: str
    rule_arn: str
    target_groups: dict[Color, str]


@dataclass(frozen=True)
class Mesh:
    """A mesh with a virtual node per color and one virtual router."""

    mesh_name: str
    virtual_router_name: str
    virtual_nodes: dict[Color, str]


def weighted_forward(
    target_groups: dict[Color, str], blue: int, green: int, **stickiness: Any
) -> Any:
    """A forward action to both colors' target groups with these weights."""
    config: dict[str, Any] = {
        "TargetGroups": [
            {"TargetGroupArn": target_groups["blue"], "Weight": blue},
            {"TargetGroupArn": target_groups["green"], "Weight": green},
        ]
    }
    if stickiness:
        config["TargetGroupStickinessConfig"] = stickiness
    return {"Type": "forward", "ForwardConfig": config}
