"""ECS: task-definition revisions, the inactive color's service, and its health."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws import aws_call, aws_client
from activities.ssm import require_inactive
from models.activities import (
    CheckHealthInput,
    ReadTaskDefinitionInput,
    RegisterTaskDefinitionInput,
    ScaleToZeroInput,
    ServiceRef,
    UpdateServiceInput,
)
from models.observations import HealthObservation

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import DeploymentTypeDef, ServiceTypeDef

TASK_DEFINITION_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
    "trustedExecutionConfiguration",
)
"""What RegisterTaskDefinition accepts and DescribeTaskDefinition returns (tags come apart)."""


@activity.defn
def register_task_definition(arg: RegisterTaskDefinitionInput) -> str:
    """The ARN of the family's latest revision with ``image`` in ``container_name``.

    Registers a copy of the latest revision with the new image, unless the latest revision
    already runs it: a retry after a crash must not register a second revision.
    """
    ecs = aws_client("ecs", arg.region)
    with aws_call("ecs.DescribeTaskDefinition"):
        described = ecs.describe_task_definition(taskDefinition=arg.task_family, include=["TAGS"])
    latest: dict[str, Any] = dict(described["taskDefinition"])
    containers: list[dict[str, Any]] = [dict(c) for c in latest["containerDefinitions"]]
    container = next((c for c in containers if c.get("name") == arg.container_name), None)
    if container is None:
        names = ", ".join(str(c.get("name")) for c in containers)
        raise ApplicationError(
            f"ecs: {latest['taskDefinitionArn']} has no container named {arg.container_name!r}"
            f" (it has: {names})",
            type="ContainerNotFound",
            non_retryable=True,
        )
    if container.get("image") == arg.image:
        return str(latest["taskDefinitionArn"])
    container["image"] = arg.image
    request = {key: latest[key] for key in TASK_DEFINITION_FIELDS if latest.get(key) is not None}
    request["containerDefinitions"] = containers
    if described.get("tags"):
        request["tags"] = described["tags"]
    with aws_call("ecs.RegisterTaskDefinition"):
        registered = ecs.register_task_definition(**request)
    return registered["taskDefinition"]["taskDefinitionArn"]


@activity.defn
def update_service(arg: UpdateServiceInput) -> None:
    """Point the inactive color's service at a task definition and a desired count."""
    _update_inactive(
        arg.target, desiredCount=arg.desired_count, taskDefinition=arg.task_definition_arn
    )


@activity.defn
def scale_to_zero(arg: ScaleToZeroInput) -> None:
    """Stop the inactive color's tasks: desired count 0, and back on ``task_definition_arn``
    when one is given (a failed deployment putting the color back as it found it)."""
    back = {"taskDefinition": arg.task_definition_arn} if arg.task_definition_arn else {}
    _update_inactive(arg.target, desiredCount=0, **back)


def _update_inactive(ref: ServiceRef, **changes: Any) -> None:
    # Absolute values, never increments: repeating the call changes nothing.
    require_inactive(ref)
    with aws_call("ecs.UpdateService"):
        aws_client("ecs", ref.region).update_service(
            cluster=ref.cluster, service=ref.service, **changes
        )


@activity.defn
def check_health(arg: CheckHealthInput) -> HealthObservation:
    """What the color's service (and its target group, if given) looks like right now."""
    ref = arg.target
    service = _describe_service(ref)
    desired = service.get("desiredCount", 0)
    targets_healthy = targets_total = None
    if arg.target_group_arn:
        targets_healthy, targets_total = _target_health(ref.region, arg.target_group_arn)
    problem = _unhealthy_reason(service, arg.target_group_arn, targets_healthy)
    return HealthObservation(
        healthy=problem is None,
        reason=problem or "healthy",
        running_count=service.get("runningCount", 0),
        desired_count=desired,
        pending_count=service.get("pendingCount", 0),
        rollout_state=(_primary(service) or {}).get("rolloutState"),
        task_definition_arn=service.get("taskDefinition"),
        targets_healthy=targets_healthy,
        targets_total=targets_total,
        checked_at=datetime.now(UTC),
    )


@activity.defn
def read_task_definition(arg: ReadTaskDefinitionInput) -> str | None:
    """The task definition a color's service runs now; None when ECS reports none."""
    return _describe_service(arg.target).get("taskDefinition")


def _describe_service(ref: ServiceRef) -> "ServiceTypeDef":
    """The color's service as ECS describes it; ServiceNotFound unless it exists and is ACTIVE."""
    with aws_call("ecs.DescribeServices"):
        answer = aws_client("ecs", ref.region).describe_services(
            cluster=ref.cluster, services=[ref.service]
        )
    where = f"{ref.cluster}/{ref.service}"
    if answer.get("failures") or not answer.get("services"):
        reasons = ", ".join(str(f.get("reason")) for f in answer.get("failures", []))
        raise ApplicationError(
            f"ecs.DescribeServices: ServiceNotFound: {where}: {reasons or 'not found'}",
            type="ServiceNotFound",
            non_retryable=True,
        )
    service = answer["services"][0]
    if service.get("status") != "ACTIVE":
        raise ApplicationError(
            f"ecs.DescribeServices: ServiceNotFound: {where} is {service.get('status')}",
            type="ServiceNotFound",
            non_retryable=True,
        )
    return service


def _unhealthy_reason(
    service: "ServiceTypeDef", target_group_arn: str | None, targets_healthy: int | None
) -> str | None:
    """Why the service is not healthy, in a few words; None when it is."""
    running, desired = service.get("runningCount", 0), service.get("desiredCount", 0)
    deployments = service.get("deployments", [])
    primary = _primary(service)
    if desired == 0:
        return "desired count is 0"
    if running != desired:
        return f"running {running} of {desired}"
    if primary is None:
        return "no primary deployment"
    rollout = primary.get("rolloutState")
    if rollout is not None and rollout != "COMPLETED":
        return f"rollout {rollout}"
    if rollout is None:
        # Deployments without a rollout state (older controllers): judge by the counts.
        if primary.get("runningCount", 0) != desired:
            return f"primary deployment running {primary.get('runningCount', 0)} of {desired}"
        if len(deployments) > 1:
            return f"{len(deployments)} deployments active"
    if not service.get("taskDefinition"):
        return "no task definition reported"
    if target_group_arn and (targets_healthy or 0) < desired:
        return f"{targets_healthy} of {desired} targets healthy in {_target_group_name(target_group_arn)}"
    return None


def _primary(service: "ServiceTypeDef") -> "DeploymentTypeDef | None":
    """The deployment ECS is rolling out (or has rolled out) now."""
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)


def _target_health(region: str, target_group_arn: str) -> tuple[int, int]:
    """(healthy, all) targets registered in the target group."""
    with aws_call("elbv2.DescribeTargetHealth"):
        answer = aws_client("elbv2", region).describe_target_health(TargetGroupArn=target_group_arn)
    states = [d.get("TargetHealth", {}).get("State") for d in answer["TargetHealthDescriptions"]]
    return states.count("healthy"), len(states)


def _target_group_name(arn: str) -> str:
    # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
    parts = arn.split(":")[-1].split("/")
    return parts[1] if len(parts) == 3 else arn
