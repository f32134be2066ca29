"""ECS activities against moto: revisions, the active-color guard, restoring, health."""

from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ecs import (
    TASK_DEFINITION_FIELDS,
    _unhealthy_reason,
    check_health,
    read_task_definition,
    register_task_definition,
    scale_to_zero,
    update_service,
)
from models.activities import (
    CheckHealthInput,
    ReadTaskDefinitionInput,
    RegisterTaskDefinitionInput,
    ScaleToZeroInput,
    ServiceRef,
    UpdateServiceInput,
)
from tests.activities.aws_resources import REGION, TASK_DEFINITION, Pair, unique

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

# What ECS fills in per revision; everything else must survive a new image.
PER_REVISION = {"taskDefinitionArn", "revision", "registeredAt", "registeredBy"}


def register(env: ActivityEnvironment, pair: Pair, image: str, container: str = "game") -> str:
    return env.run(
        register_task_definition,
        RegisterTaskDefinitionInput(
            region=REGION, task_family=pair.family, container_name=container, image=image
        ),
    )


def revisions(ecs: "ECSClient", family: str) -> list[str]:
    return ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]


def described(ecs: "ECSClient", arn: str) -> tuple[dict[str, Any], Any]:
    answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    return dict(answer["taskDefinition"]), answer.get("tags")


def service(ecs: "ECSClient", ref: ServiceRef) -> Any:
    return ecs.describe_services(cluster=ref.cluster, services=[ref.service])["services"][0]


# --- register_task_definition ---------------------------------------------------------------


def test_same_image_reuses_the_latest_revision(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    arn = register(env, pair, "registry.example.com/game:1")

    assert arn == pair.task_definition_arn
    assert revisions(ecs, pair.family) == [pair.task_definition_arn]


def test_new_image_registers_exactly_one_revision_with_every_other_field_kept(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    arn = register(env, pair, "registry.example.com/game:2")
    again = register(env, pair, "registry.example.com/game:2")  # a retry after a crash

    assert arn == again != pair.task_definition_arn
    assert revisions(ecs, pair.family) == [pair.task_definition_arn, arn]
    old, old_tags = described(ecs, pair.task_definition_arn)
    new, new_tags = described(ecs, arn)
    images = {c["name"]: c["image"] for c in new["containerDefinitions"]}
    assert images == {
        "game": "registry.example.com/game:2",
        "envoy": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29",
    }
    new["containerDefinitions"][0]["image"] = "registry.example.com/game:1"
    assert {k: v for k, v in new.items() if k not in PER_REVISION} == {
        k: v for k, v in old.items() if k not in PER_REVISION
    }
    assert new_tags == old_tags == TASK_DEFINITION["tags"]


def test_the_latest_revision_is_the_base(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    second = register(env, pair, "registry.example.com/game:2")
    third = register(env, pair, "registry.example.com/game:1")

    assert revisions(ecs, pair.family) == [pair.task_definition_arn, second, third]
    assert third.endswith(":3")


def test_a_missing_container_is_not_retried(env: ActivityEnvironment, pair: Pair) -> None:
    with pytest.raises(ApplicationError) as caught:
        register(env, pair, "registry.example.com/game:2", container="gmae")

    assert caught.value.non_retryable
    assert caught.value.type == "ContainerNotFound"
    assert "'gmae'" in caught.value.message and "game, envoy" in caught.value.message


def test_an_unknown_family_is_not_retried_and_carries_aws_message(
    env: ActivityEnvironment, aws: dict[str, str]
) -> None:
    with pytest.raises(ApplicationError) as caught:
        env.run(
            register_task_definition,
            RegisterTaskDefinitionInput(
                region=REGION, task_family=unique("nope"), container_name="game", image="x:1"
            ),
        )

    assert caught.value.non_retryable
    assert caught.value.message == (
        "ecs.DescribeTaskDefinition: ClientException: Unable to describe task definition."
    )


def test_every_field_register_accepts_is_copied() -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None
    accepted = set(shape.members)

    assert accepted - {"tags"} == set(TASK_DEFINITION_FIELDS)


# --- update_service and scale_to_zero --------------------------------------------------------


def test_update_service_refuses_the_active_color(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    blue = pair.ref("blue")
    with pytest.raises(ApplicationError) as caught:
        env.run(
            update_service,
            UpdateServiceInput(target=blue, task_definition_arn="x", desired_count=2),
        )

    assert caught.value.non_retryable
    assert caught.value.message == (
        f"refusing to change blue ({blue.cluster}/game): it is the active color per"
        f" {pair.prefix}/current_active_color"
    )
    assert service(ecs, blue)["desiredCount"] == 0


def test_update_service_sets_the_inactive_color(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    arn = register(env, pair, "registry.example.com/game:2")
    request = UpdateServiceInput(target=pair.ref("green"), task_definition_arn=arn, desired_count=2)
    env.run(update_service, request)
    env.run(update_service, request)  # a retry: the same absolute values

    green = service(ecs, pair.ref("green"))
    assert (green["desiredCount"], green["taskDefinition"]) == (2, arn)
    assert service(ecs, pair.ref("blue"))["taskDefinition"] == pair.task_definition_arn


def test_scale_to_zero_refuses_the_active_color(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    blue = pair.ref("blue")
    ecs.update_service(cluster=blue.cluster, service=blue.service, desiredCount=3)

    with pytest.raises(ApplicationError) as caught:
        env.run(scale_to_zero, ScaleToZeroInput(target=blue))

    assert caught.value.non_retryable
    assert caught.value.type == "ActiveColorProtected"
    assert service(ecs, blue)["desiredCount"] == 3


def test_scale_to_zero_stops_the_inactive_color(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    green = pair.ref("green")
    ecs.update_service(cluster=green.cluster, service=green.service, desiredCount=2)

    env.run(scale_to_zero, ScaleToZeroInput(target=green))
    env.run(scale_to_zero, ScaleToZeroInput(target=green))

    assert service(ecs, green)["desiredCount"] == 0


def test_scale_to_zero_puts_the_inactive_color_back_on_its_task_definition(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    green = pair.ref("green")
    new = register(env, pair, "registry.example.com/game:2")
    env.run(
        update_service, UpdateServiceInput(target=green, task_definition_arn=new, desired_count=2)
    )
    restore = ScaleToZeroInput(target=green, task_definition_arn=pair.task_definition_arn)

    env.run(scale_to_zero, restore)
    env.run(scale_to_zero, restore)  # a retry: the same absolute values

    seen = service(ecs, green)
    assert (seen["desiredCount"], seen["taskDefinition"]) == (0, pair.task_definition_arn)


def test_scale_to_zero_refuses_to_put_the_active_color_back_too(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    blue = pair.ref("blue")
    new = register(env, pair, "registry.example.com/game:2")

    with pytest.raises(ApplicationError) as caught:
        env.run(scale_to_zero, ScaleToZeroInput(target=blue, task_definition_arn=new))

    assert caught.value.type == "ActiveColorProtected"
    assert service(ecs, blue)["taskDefinition"] == pair.task_definition_arn


def test_read_task_definition_answers_what_the_service_runs(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    green = pair.ref("green")
    before = env.run(read_task_definition, ReadTaskDefinitionInput(target=green))
    new = register(env, pair, "registry.example.com/game:2")
    ecs.update_service(cluster=green.cluster, service=green.service, taskDefinition=new)

    assert before == pair.task_definition_arn
    assert env.run(read_task_definition, ReadTaskDefinitionInput(target=green)) == new


def test_read_task_definition_of_a_missing_service_is_not_retried(
    env: ActivityEnvironment, pair: Pair
) -> None:
    missing = pair.ref("green").model_copy(update={"service": "nope"})
    with pytest.raises(ApplicationError) as caught:
        env.run(read_task_definition, ReadTaskDefinitionInput(target=missing))

    assert caught.value.non_retryable
    assert caught.value.type == "ServiceNotFound"


def test_a_missing_cluster_is_not_retried_and_carries_aws_message(
    env: ActivityEnvironment, pair: Pair
) -> None:
    ref = pair.ref("green").model_copy(update={"cluster": unique("nope")})
    with pytest.raises(ApplicationError) as caught:
        env.run(
            update_service, UpdateServiceInput(target=ref, task_definition_arn="x", desired_count=1)
        )

    assert caught.value.non_retryable
    assert caught.value.type == "ClusterNotFoundException"
    assert caught.value.message == "ecs.UpdateService: ClusterNotFoundException: Cluster not found."


# --- check_health ------------------------------------------------------------------------------


def health(env: ActivityEnvironment, ref: ServiceRef, target_group_arn: str | None = None) -> Any:
    return env.run(check_health, CheckHealthInput(target=ref, target_group_arn=target_group_arn))


def test_healthy_when_running_desired_and_rolled_out(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    green = pair.ref("green")
    ecs.update_service(cluster=green.cluster, service=green.service, desiredCount=2)

    seen = health(env, green)

    assert (seen.healthy, seen.reason) == (True, "healthy")
    assert (seen.running_count, seen.desired_count, seen.rollout_state) == (2, 2, "COMPLETED")
    assert seen.task_definition_arn == pair.task_definition_arn
    assert seen.targets_healthy is None and seen.targets_total is None


def test_not_healthy_at_desired_count_zero(env: ActivityEnvironment, pair: Pair) -> None:
    seen = health(env, pair.ref("green"))

    assert (seen.healthy, seen.reason) == (False, "desired count is 0")


def test_not_healthy_while_tasks_start_or_the_rollout_runs(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    cluster = pair.clusters["green"]
    # Created with tasks, moto reports none running and the rollout in progress.
    ecs.create_service(
        cluster=cluster,
        serviceName="lobby",
        taskDefinition=pair.task_definition_arn,
        desiredCount=2,
    )
    lobby = pair.ref("green").model_copy(update={"service": "lobby"})

    starting = health(env, lobby)
    ecs.update_service(cluster=cluster, service="lobby", desiredCount=2)
    rolling = health(env, lobby)

    assert (starting.healthy, starting.reason, starting.pending_count) == (
        False,
        "running 0 of 2",
        2,
    )
    assert (rolling.healthy, rolling.reason, rolling.rollout_state) == (
        False,
        "rollout IN_PROGRESS",
        "IN_PROGRESS",
    )


def test_target_group_targets_must_be_healthy(
    env: ActivityEnvironment,
    pair: Pair,
    ecs: "ECSClient",
    elbv2: "ElasticLoadBalancingv2Client",
    target_groups: dict[str, str],
) -> None:
    green = pair.ref("green")
    tg = target_groups["green"]
    ecs.update_service(cluster=green.cluster, service=green.service, desiredCount=2)
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.1.10", "Port": 8080}])

    one = health(env, green, tg)
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.1.11", "Port": 8080}])
    two = health(env, green, tg)

    name = tg.split("/")[1]
    assert (one.healthy, one.reason) == (False, f"1 of 2 targets healthy in {name}")
    assert (one.targets_healthy, one.targets_total) == (1, 1)
    assert (two.healthy, two.reason, two.targets_healthy, two.targets_total) == (
        True,
        "healthy",
        2,
        2,
    )


def test_a_missing_or_deleted_service_is_not_retried(
    env: ActivityEnvironment, pair: Pair, ecs: "ECSClient"
) -> None:
    green = pair.ref("green")
    ecs.delete_service(cluster=green.cluster, service=green.service)

    with pytest.raises(ApplicationError) as deleted:
        health(env, green)
    with pytest.raises(ApplicationError) as missing:
        health(env, green.model_copy(update={"service": "nope"}))

    assert deleted.value.non_retryable and missing.value.non_retryable
    assert deleted.value.type == missing.value.type == "ServiceNotFound"
    assert deleted.value.message.endswith(f"{green.cluster}/game is INACTIVE")
    assert missing.value.message.endswith(f"{green.cluster}/nope: MISSING")


@pytest.mark.parametrize(
    ("deployments", "reason"),
    [
        ([{"status": "PRIMARY", "runningCount": 2}], None),
        ([{"status": "PRIMARY", "runningCount": 1}], "primary deployment running 1 of 2"),
        (
            [{"status": "PRIMARY", "runningCount": 2}, {"status": "ACTIVE", "runningCount": 1}],
            "2 deployments active",
        ),
        ([{"status": "ACTIVE", "runningCount": 2}], "no primary deployment"),
        ([{"status": "PRIMARY", "rolloutState": "FAILED"}], "rollout FAILED"),
    ],
)
def test_deployments_decide_health(deployments: list[dict[str, Any]], reason: str | None) -> None:
    service: Any = {
        "runningCount": 2,
        "desiredCount": 2,
        "taskDefinition": "arn:aws:ecs:us-west-2:123456789012:task-definition/game:2",
        "deployments": deployments,
    }

    assert _unhealthy_reason(service, None, None) == reason
