"""The local ECS stand-in: game-server processes follow moto's ECS services, tasks register in
their target group only once healthy, and leave it before they stop."""

import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from local.aws_resources import DemoResources, create_demo_resources
from local.data_plane.ecs_tasks import ColorTasks, answers_health
from models.colors import Color

REGION = "us-west-2"
DEADLINE = 20.0


@pytest.fixture
def resources(aws: dict[str, str]) -> DemoResources:
    """The demo's resources under a name of the test's own: blue wants 2 tasks of version 1."""
    return create_demo_resources(
        REGION,
        blue_url="http://127.0.0.1:9/blue",
        green_url="http://127.0.0.1:9/green",
        service=f"t{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture
def color_tasks(
    resources: DemoResources, tmp_path: Path
) -> Iterator[Callable[[Color], ColorTasks]]:
    """The stand-in for a color of ``resources``; every task it started is stopped after."""
    made: list[ColorTasks] = []

    def make(color: Color) -> ColorTasks:
        tasks = ColorTasks(
            region=REGION,
            color=color,
            cluster=resources.clusters[color],
            service=resources.service,
            target_group_arn=resources.target_group_arns[color],
            container_name=resources.container_name,
            log_dir=tmp_path,
            say=lambda line: print(line),
        )
        made.append(tasks)
        return tasks

    yield make
    for tasks in made:
        tasks.stop_all()


def sync_until(tasks: ColorTasks, holds: Callable[[], bool], what: str) -> None:
    """Reconcile every 0.1 s until ``holds()``; fail naming ``what`` after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not holds():
        assert time.monotonic() < deadline, f"not {what} after {DEADLINE:.0f}s"
        tasks.sync()
        time.sleep(0.1)


def targets(resources: DemoResources, color: Color) -> set[str]:
    """The targets registered in the color's target group in moto, as base URLs."""
    described = boto3.client("elbv2", region_name=REGION).describe_target_health(
        TargetGroupArn=resources.target_group_arns[color]
    )
    return {
        f"http://{d['Target']['Id']}:{d['Target']['Port']}"
        for d in described["TargetHealthDescriptions"]
    }


def health(url: str) -> str:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
        return str(answer.read().decode())


def deploy(resources: DemoResources, color: Color, image: str, count: int) -> None:
    """What the deployment's activities do: a task definition for ``image``, then the service."""
    ecs = boto3.client("ecs", region_name=REGION)
    arn = ecs.register_task_definition(
        family=resources.task_family,
        containerDefinitions=[{"name": resources.container_name, "image": image, "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(
        cluster=resources.clusters[color],
        service=resources.service,
        desiredCount=count,
        taskDefinition=arn,
    )


def test_tasks_start_as_the_service_says_and_register_once_healthy(
    resources: DemoResources, color_tasks: Callable[[Color], ColorTasks]
) -> None:
    blue = color_tasks("blue")
    assert targets(resources, "blue") == set(), "the demo's target groups start empty"
    sync_until(blue, lambda: len(targets(resources, "blue")) == 2, "2 blue targets")
    urls = targets(resources, "blue")
    # Registered means answering: every target is a live game server of version 1.
    assert {health(url) for url in urls} == {"ok color=blue version=1"}
    assert sorted(blue.serving_urls) == sorted(urls)


def test_a_new_version_replaces_the_old_one_task_by_task(
    resources: DemoResources, color_tasks: Callable[[Color], ColorTasks]
) -> None:
    green = color_tasks("green")
    deploy(resources, "green", "game:2", 2)
    sync_until(green, lambda: len(targets(resources, "green")) == 2, "2 green targets")
    old = targets(resources, "green")

    deploy(resources, "green", "game:3", 2)
    seen_fewer_than_two = False

    def replaced() -> bool:
        nonlocal seen_fewer_than_two
        now = targets(resources, "green")
        seen_fewer_than_two |= len(now) < 2
        return len(now) == 2 and not now & old and len(green.tasks) == 2

    sync_until(green, replaced, "version 3 in place of version 2")
    assert {health(url) for url in targets(resources, "green")} == {"ok color=green version=3"}
    assert not seen_fewer_than_two, "old tasks left before the new ones were registered"


def test_scaled_to_zero_a_task_is_deregistered_before_its_process_stops(
    resources: DemoResources, color_tasks: Callable[[Color], ColorTasks]
) -> None:
    blue = color_tasks("blue")
    sync_until(blue, lambda: len(targets(resources, "blue")) == 2, "2 blue targets")
    processes = {task.url: task.process for task in blue.tasks}

    boto3.client("ecs", region_name=REGION).update_service(
        cluster=resources.clusters["blue"], service=resources.service, desiredCount=0
    )

    def stopped_after_deregistered() -> bool:
        registered = targets(resources, "blue")
        for url, process in processes.items():
            if process.poll() is not None:
                assert url not in registered, f"task at {url} stopped while registered"
        return not blue.tasks and all(p.poll() is not None for p in processes.values())

    sync_until(blue, stopped_after_deregistered, "every blue task stopped")
    assert targets(resources, "blue") == set()
    assert not any(answers_health(url) for url in processes)


def test_a_task_that_dies_is_deregistered_and_replaced(
    resources: DemoResources, color_tasks: Callable[[Color], ColorTasks]
) -> None:
    blue = color_tasks("blue")
    sync_until(blue, lambda: len(targets(resources, "blue")) == 2, "2 blue targets")
    victim = blue.tasks[0]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(5)

    def replaced() -> bool:
        now = targets(resources, "blue")
        return len(now) == 2 and victim.url not in now

    sync_until(blue, replaced, "the dead task replaced")
    assert victim not in blue.tasks


def test_targets_left_from_an_earlier_run_are_forgotten(
    resources: DemoResources, color_tasks: Callable[[Color], ColorTasks]
) -> None:
    boto3.client("elbv2", region_name=REGION).register_targets(
        TargetGroupArn=resources.target_group_arns["blue"],
        Targets=[{"Id": "127.1.255.254", "Port": 9}],
    )
    blue = color_tasks("blue")
    blue.forget_targets()
    assert targets(resources, "blue") == set()
