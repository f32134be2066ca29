"""The local environment: the demo's AWS resources and config, the dev server, the whole stack."""

import json
import os
import socket
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from temporalio.client import Client

from activities.ecs import check_health
from cli import starting
from local.aws_resources import (
    DemoResources,
    create_demo_resources,
    placeholder_targets,
    write_demo_config,
)
from local.data_plane.ecs_tasks import deregistration_delay
from local.dev import write_endpoints
from local.processes import (
    free_port,
    game_server,
    listening,
    temporal_cli,
    temporal_dev_server,
)
from local.stack import DEMO_REGIONS, demo_regions, local_stack
from local.state import format_state, mismatches, read_state
from models.activities import CheckHealthInput, ServiceRef
from models.config import EnvironmentConfig, load_config
from models.observations import ColorState, RouterWeights
from workflows.search_attributes import REGISTRATIONS

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

REGION = "us-west-2"
BLUE_URL, GREEN_URL = "http://127.0.0.1:18081", "http://127.0.0.1:18082"
OTHER_REGION = "us-east-1"
OTHER_BLUE_URL, OTHER_GREEN_URL = "http://127.0.0.1:18083", "http://127.0.0.1:18084"


def fetch(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as answer:
        body: bytes = answer.read()
        return body


@pytest.fixture
def resources(aws: dict[str, str]) -> DemoResources:
    """The demo's resources under a service name no other test uses (the moto is shared), with
    blue's targets registered as the ECS stand-in would once its tasks answer."""
    service = f"g{uuid.uuid4().hex[:8]}"
    resources = create_demo_resources(
        REGION, blue_url=BLUE_URL, green_url=GREEN_URL, service=service
    )
    placeholder_targets(resources)
    return resources


def test_target_groups_start_empty_and_stop_tasks_a_second_after_deregistering(
    aws: dict[str, str],
) -> None:
    resources = create_demo_resources(
        REGION, blue_url=BLUE_URL, green_url=GREEN_URL, service=f"g{uuid.uuid4().hex[:8]}"
    )
    elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=REGION)
    for arn in resources.target_group_arns.values():
        assert elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []
        assert deregistration_delay(REGION, arn) == 1


@pytest.fixture
def env(resources: DemoResources, tmp_path: Path) -> EnvironmentConfig:
    config = write_demo_config(tmp_path / "deploy.toml", resources)
    assert load_config(tmp_path / "deploy.toml") == config
    return config.environment("prod")


def test_config_describes_the_resources(resources: DemoResources, env: EnvironmentConfig) -> None:
    assert env.ssm_prefix == f"/{resources.service}/prod"
    assert env.task_family == env.container_name == resources.service
    assert env.desired_count == 2
    for color in ("blue", "green"):
        assert env.color(color).cluster == f"{resources.service}-prod-{color}"
        assert env.color(color).target_group_arn == resources.target_group_arns[color]
    assert (env.blue.url, env.green.url) == (BLUE_URL, GREEN_URL)
    assert env.router.kind == "alb"
    assert env.router.listener_arn == resources.listener_arn
    assert env.connections is not None
    assert env.connections.version_header == "X-Game-Version"
    assert [check.url for check in env.integration_checks] == ["{color_url}/health"]


def test_the_config_arns_exist(env: EnvironmentConfig) -> None:
    ecs: ECSClient = boto3.client("ecs", region_name=REGION)
    elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=REGION)
    assert env.router.kind == "alb"
    listeners = elbv2.describe_listeners(ListenerArns=[env.router.listener_arn])["Listeners"]
    assert [listener["Port"] for listener in listeners] == [80]
    groups = [env.blue.target_group_arn or "", env.green.target_group_arn or ""]
    found = elbv2.describe_target_groups(TargetGroupArns=groups)["TargetGroups"]
    assert {group["TargetType"] for group in found} == {"ip"}
    for color in (env.blue, env.green):
        answer = ecs.describe_services(cluster=color.cluster, services=[color.service])
        assert not answer["failures"]
        assert answer["services"][0]["status"] == "ACTIVE"
    family = ecs.describe_task_definition(taskDefinition=env.task_family)["taskDefinition"]
    assert family["containerDefinitions"][0]["image"] == f"{env.task_family}:1"


def test_blue_is_active_healthy_and_has_all_the_traffic(env: EnvironmentConfig) -> None:
    state = read_state(env)

    assert state.ssm == ColorState(active_color="blue", versions={"blue": "1", "green": None})
    assert state.weights == RouterWeights(blue=100, green=0)
    blue, green = state.services["blue"], state.services["green"]
    assert blue.healthy, blue.reason
    assert (blue.desired_count, blue.running_count, blue.rollout_state) == (2, 2, "COMPLETED")
    assert (blue.targets_healthy, blue.targets_total) == (2, 2)
    assert green.desired_count == 0
    assert mismatches(state, "blue", "1", 2) == []
    assert len(mismatches(state, "green", "2", 2)) == 6


def test_the_state_reads_well(resources: DemoResources, env: EnvironmentConfig) -> None:
    text = format_state(read_state(env))

    assert (
        f"SSM /{resources.service}/prod: active color blue; versions: blue 1, green (none)" in text
    )
    assert "router weights: blue 100, green 0" in text
    assert f"{resources.service}-prod-blue/{resources.service}: desired 2, running 2" in text
    assert f"{resources.service}-prod-green/{resources.service}: desired 0, running 0" in text


def test_green_becomes_healthy_once_scaled_up(env: EnvironmentConfig) -> None:
    # What the deployment does to the inactive color; moto must then report it healthy.
    ecs: ECSClient = boto3.client("ecs", region_name=REGION)
    ecs.update_service(cluster=env.green.cluster, service=env.green.service, desiredCount=2)

    ref = ServiceRef.of(env.region, env.ssm_prefix, "green", env.green)
    health = check_health(CheckHealthInput(target=ref, target_group_arn=env.green.target_group_arn))
    assert health.healthy, health.reason


@pytest.fixture
def two_regions(aws: dict[str, str]) -> list[DemoResources]:
    """The demo's resources in two regions, under one service name no other test uses."""
    service = f"g{uuid.uuid4().hex[:8]}"
    return [
        create_demo_resources(REGION, blue_url=BLUE_URL, green_url=GREEN_URL, service=service),
        create_demo_resources(
            OTHER_REGION, blue_url=OTHER_BLUE_URL, green_url=OTHER_GREEN_URL, service=service
        ),
    ]


def test_a_two_region_config_points_each_region_at_its_own_resources(
    two_regions: list[DemoResources], tmp_path: Path
) -> None:
    config = write_demo_config(tmp_path / "deploy.toml", *two_regions)
    assert load_config(tmp_path / "deploy.toml") == config
    env = config.environment("prod")

    assert env.region == REGION
    assert env.wave_list() == [[REGION, OTHER_REGION]]
    assert set(env.in_region) == {OTHER_REGION}
    for resources in two_regions:
        seen = env.for_region(resources.region)
        assert seen.region == resources.region
        assert seen.is_single_region()
        for color in ("blue", "green"):
            assert seen.color(color).cluster == resources.clusters[color]
            assert seen.color(color).target_group_arn == resources.target_group_arns[color]
            assert seen.color(color).url == resources.urls[color]
            assert f":{resources.region}:" in (seen.color(color).target_group_arn or "")
        assert seen.router.kind == "alb"
        assert seen.router.listener_arn == resources.listener_arn
        assert seen.bake.alarms == resources.alarm_names
        # The rest is the same everywhere.
        assert seen.model_dump(exclude={"region", "blue", "green", "router", "bake"}) == (
            env.for_region(REGION).model_dump(exclude={"region", "blue", "green", "router", "bake"})
        )
    assert two_regions[0].listener_arn != two_regions[1].listener_arn


def test_each_region_has_its_own_state(two_regions: list[DemoResources], tmp_path: Path) -> None:
    env = write_demo_config(tmp_path / "deploy.toml", *two_regions).environment("prod")
    west, east = env.for_region(REGION), env.for_region(OTHER_REGION)
    for seen in (west, east):
        assert mismatches(read_state(seen), "blue", "1", 2) == []

    # Scaling green up in one region leaves the other region's green alone.
    ecs: ECSClient = boto3.client("ecs", region_name=OTHER_REGION)
    ecs.update_service(cluster=east.green.cluster, service=east.green.service, desiredCount=2)

    assert read_state(east).services["green"].desired_count == 2
    assert read_state(west).services["green"].desired_count == 0


def test_demo_regions() -> None:
    assert demo_regions(1) == [REGION]
    assert demo_regions(2) == [REGION, OTHER_REGION]
    assert demo_regions(len(DEMO_REGIONS)) == list(DEMO_REGIONS)
    for wrong in (0, len(DEMO_REGIONS) + 1):
        with pytest.raises(ValueError, match="1 to 5 regions"):
            demo_regions(wrong)


def test_temporal_dev_server_serves_then_stops() -> None:
    port = free_port()
    with temporal_dev_server(port, ui_port=None) as address:
        assert address == f"127.0.0.1:{port}"
        health = temporal_cli(address, "operator", "cluster", "health")
        assert health is not None
        assert json.loads(health)["status"] == "SERVING"
    assert not listening(port)


@pytest.mark.parametrize("registered", [True, False], ids=["registered", "not registered"])
async def test_the_dev_server_has_the_search_attributes_it_is_given(registered: bool) -> None:
    given = REGISTRATIONS if registered else None
    with temporal_dev_server(free_port(), ui_port=None, search_attributes=given) as address:
        listed = temporal_cli(address, "operator", "search-attribute", "list")
        assert listed is not None
        custom = json.loads(listed).get("customAttributes", {})
        client = await Client.connect(address)
        # What client.py asks before it starts a deployment with them, or without.
        found = await starting.search_attributes_registered(client)
    if registered:
        assert {name: kind for name, kind in custom.items() if name.startswith("BlueGreen")} == {
            "BlueGreenService": "INDEXED_VALUE_TYPE_KEYWORD",
            "BlueGreenEnvironment": "INDEXED_VALUE_TYPE_KEYWORD",
            "BlueGreenVersion": "INDEXED_VALUE_TYPE_KEYWORD",
            "BlueGreenPhase": "INDEXED_VALUE_TYPE_KEYWORD",
            "BlueGreenState": "INDEXED_VALUE_TYPE_KEYWORD",
            "BlueGreenRegions": "INDEXED_VALUE_TYPE_KEYWORD_LIST",
        }
    else:
        assert not any(name.startswith("BlueGreen") for name in custom)
    assert found is registered


def test_a_taken_port_is_refused_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is in use")
        with refused, temporal_dev_server(port, ui_port=None):
            pass


def test_game_server_helper() -> None:
    port = free_port()
    with game_server(port, "green", "2") as url:
        assert fetch(f"{url}/health") == b"ok color=green version=2"
        assert json.loads(fetch(f"{url}/version")) == {"color": "green", "version": "2"}
    assert not listening(port)


def test_the_stack_starts_and_stops_without_a_worker(tmp_path: Path) -> None:
    # Two regions: every live module starts the one-region stack already.
    regions = 2
    lines: list[str] = []
    ports: list[int] = []
    endpoint_before = os.environ.get("AWS_ENDPOINT_URL")
    with local_stack(
        temporal_port=free_port(),
        config_path=tmp_path / "deploy.toml",
        start_worker=False,
        regions=demo_regions(regions),
        say=lines.append,
    ) as stack:
        assert stack.regions == demo_regions(regions)
        assert stack.resources == stack.regional[REGION]
        assert stack.environment_config().all_regions() == stack.regions
        for region, resources in stack.regional.items():
            env = stack.region_config(region)
            assert (env.blue.url, env.green.url) == (
                resources.urls["blue"],
                resources.urls["green"],
            )
            assert resources.urls["blue"] == stack.data_plane.color_url(region, "blue")
            assert mismatches(read_state(env), "blue", "1", 2) == []
            # The stack's players reached blue's tasks through the region's HAProxy.
            connections = fetch(f"{env.blue.url}/connections", {"X-Game-Version": "1"})
            assert json.loads(connections) == {"connections": 4}
            assert fetch(f"{stack.data_plane.players[region]}/health").startswith(b"ok color=blue")
        endpoints = json.loads(
            write_endpoints(stack, tmp_path / "endpoints.json").model_dump_json()
        )
        assert json.loads((tmp_path / "endpoints.json").read_text()) == endpoints
        assert endpoints["players"] == stack.data_plane.players
        assert endpoints["deploy_toml"] == str(stack.config_path)
        assert endpoints["prometheus"] == stack.data_plane.prometheus
        ports += [int(url.rpartition(":")[2]) for url in stack.data_plane.players.values()]
        ports += [int(stack.data_plane.gateway.rpartition(":")[2])]
        ports += [int(stack.data_plane.runtime_api.rpartition(":")[2])]
        ports += [int(stack.data_plane.prometheus.rpartition(":")[2])]
        assert len(set(ports)) == regions + 3
        ports += [int(stack.temporal_address.rpartition(":")[2])]
        ports += [int(stack.env["AWS_ENDPOINT_URL"].rpartition(":")[2])]
        assert stack.ui_url is None
        assert stack.worker is None
        assert stack.env["TEMPORAL_ADDRESS"] == stack.temporal_address
        assert os.environ["AWS_ENDPOINT_URL"] == stack.env["AWS_ENDPOINT_URL"]
    assert lines[-1] == "stopping everything"
    assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before
    assert [port for port in ports if listening(port)] == []
