"""The routers against moto: ALB listener and rule weights, App Mesh route weights."""

from typing import TYPE_CHECKING, Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.traffic import read_router_weights, set_traffic_weights, switch_traffic
from models.activities import RouterInput, SetWeightsInput, SwitchTrafficInput
from models.colors import Color
from models.config import AlbRouter, AppMeshRouter, ColorConfig
from models.observations import RouterWeights
from tests.activities.aws_resources import REGION, Alb, Mesh, unique, weighted_forward

if TYPE_CHECKING:
    from mypy_boto3_appmesh import AppMeshClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

BLUE = RouterWeights(blue=100, green=0)
GREEN = RouterWeights(blue=0, green=100)


def alb_input(alb: Alb, rule: bool = False) -> RouterInput:
    return RouterInput(
        region=REGION,
        router=AlbRouter(
            kind="alb", listener_arn=alb.listener_arn, rule_arn=alb.rule_arn if rule else None
        ),
        blue=ColorConfig(cluster="b", service="game", target_group_arn=alb.target_groups["blue"]),
        green=ColorConfig(cluster="g", service="game", target_group_arn=alb.target_groups["green"]),
    )


def mesh_input(mesh: Mesh, route: str) -> RouterInput:
    return RouterInput(
        region=REGION,
        router=AppMeshRouter(
            kind="app_mesh",
            mesh_name=mesh.mesh_name,
            virtual_router_name=mesh.virtual_router_name,
            route_name=route,
        ),
        blue=ColorConfig(cluster="b", service="game", virtual_node=mesh.virtual_nodes["blue"]),
        green=ColorConfig(cluster="g", service="game", virtual_node=mesh.virtual_nodes["green"]),
    )


def switch(env: ActivityEnvironment, router: RouterInput, color: Color) -> RouterWeights:
    request = SwitchTrafficInput(**router.model_dump(), to_color=color)
    return env.run(switch_traffic, request)


def switch_around(env: ActivityEnvironment, router: RouterInput) -> list[RouterWeights]:
    """Read, to green, to green again, back to blue: what each call returned."""
    return [
        env.run(read_router_weights, router),
        switch(env, router, "green"),
        switch(env, router, "green"),
        env.run(read_router_weights, router),
        switch(env, router, "blue"),
        env.run(read_router_weights, router),
    ]


def step_through(env: ActivityEnvironment, router: RouterInput) -> list[RouterWeights]:
    """Green at 10 %, 50 %, 50 % again, then all traffic back to blue: the weights read after
    each."""
    seen = []
    for percent in (10, 50, 50):
        wanted = RouterWeights.split("green", percent)
        request = SetWeightsInput(**router.model_dump(), weights=wanted)
        assert env.run(set_traffic_weights, request) == wanted
        seen.append(env.run(read_router_weights, router))
    switch(env, router, "blue")
    return [*seen, env.run(read_router_weights, router)]


STEPS = [
    RouterWeights(blue=90, green=10),
    RouterWeights(blue=50, green=50),
    RouterWeights(blue=50, green=50),
    BLUE,
]


# --- ALB ---------------------------------------------------------------------------------------


def listener_actions(elbv2: "ElasticLoadBalancingv2Client", alb: Alb) -> Any:
    return elbv2.describe_listeners(ListenerArns=[alb.listener_arn])["Listeners"][0][
        "DefaultActions"
    ]


def test_alb_listener_switches_and_keeps_stickiness(
    env: ActivityEnvironment, alb: Alb, elbv2: "ElasticLoadBalancingv2Client"
) -> None:
    router = alb_input(alb)

    assert switch_around(env, router) == [BLUE, GREEN, GREEN, GREEN, BLUE, BLUE]
    switch(env, router, "green")
    assert listener_actions(elbv2, alb) == [
        weighted_forward(alb.target_groups, 0, 100, Enabled=True, DurationSeconds=300)
    ]
    switch(env, router, "blue")
    assert listener_actions(elbv2, alb) == [
        weighted_forward(alb.target_groups, 100, 0, Enabled=True, DurationSeconds=300)
    ]


def test_alb_listener_takes_traffic_steps_and_keeps_stickiness(
    env: ActivityEnvironment, alb: Alb, elbv2: "ElasticLoadBalancingv2Client"
) -> None:
    before = listener_actions(elbv2, alb)

    assert step_through(env, alb_input(alb)) == STEPS
    assert listener_actions(elbv2, alb) == before  # weights back, stickiness kept


def test_alb_rule_switches_and_keeps_conditions(
    env: ActivityEnvironment, alb: Alb, elbv2: "ElasticLoadBalancingv2Client"
) -> None:
    router = alb_input(alb, rule=True)

    assert switch_around(env, router) == [BLUE, GREEN, GREEN, GREEN, BLUE, BLUE]
    switch(env, router, "green")
    rule = elbv2.describe_rules(RuleArns=[alb.rule_arn])["Rules"][0]
    assert rule["Conditions"] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}
    ]
    assert rule["Actions"] == [weighted_forward(alb.target_groups, 0, 100, Enabled=False)]
    # The listener's default action is not the rule's: it still sends all to blue.
    assert env.run(read_router_weights, alb_input(alb)) == BLUE


def test_alb_forward_without_both_colors_is_not_retried(
    env: ActivityEnvironment,
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    target_groups: dict[Color, str],
) -> None:
    only_blue = {"Type": "forward", "TargetGroupArn": alb.target_groups["blue"]}
    elbv2.modify_listener(ListenerArn=alb.listener_arn, DefaultActions=[only_blue])  # type: ignore[list-item]

    with pytest.raises(ApplicationError) as caught:
        switch(env, alb_input(alb), "green")

    assert caught.value.non_retryable
    assert caught.value.type == "RouterMismatch"
    assert f"does not route to green ({alb.target_groups['green']})" in caught.value.message
    assert listener_actions(elbv2, alb)[0]["TargetGroupArn"] == alb.target_groups["blue"]


def test_alb_missing_listener_is_not_retried(env: ActivityEnvironment, alb: Alb) -> None:
    missing = Alb(alb.listener_arn[:-4] + "0000", alb.rule_arn, alb.target_groups)
    with pytest.raises(ApplicationError) as caught:
        env.run(read_router_weights, alb_input(missing))

    assert caught.value.non_retryable
    assert caught.value.message == (
        "elbv2.DescribeListeners: ListenerNotFound: The specified listener does not exist."
    )


# --- App Mesh ----------------------------------------------------------------------------------

RETRY_POLICY: Any = {
    "maxRetries": 3,
    "perRetryTimeout": {"unit": "s", "value": 2},
    "httpRetryEvents": ["server-error"],
}


def route_spec(mesh: Mesh, kind: str, blue: int, green: int) -> Any:
    targets = [
        {"virtualNode": mesh.virtual_nodes["blue"], "weight": blue},
        {"virtualNode": mesh.virtual_nodes["green"], "weight": green},
    ]
    if kind == "tcpRoute":
        return {"tcpRoute": {"action": {"weightedTargets": targets}}}
    return {
        "priority": 5,
        kind: {
            "match": {"prefix": "/"},
            "action": {"weightedTargets": targets},
            "retryPolicy": RETRY_POLICY,
            "timeout": {"perRequest": {"unit": "s", "value": 15}},
        },
    }


def test_app_mesh_route_takes_traffic_steps(
    env: ActivityEnvironment, mesh: Mesh, appmesh: "AppMeshClient"
) -> None:
    route = unique("route")
    appmesh.create_route(
        meshName=mesh.mesh_name,
        virtualRouterName=mesh.virtual_router_name,
        routeName=route,
        spec=route_spec(mesh, "httpRoute", 100, 0),
    )

    assert step_through(env, mesh_input(mesh, route)) == STEPS
    spec = appmesh.describe_route(
        meshName=mesh.mesh_name, virtualRouterName=mesh.virtual_router_name, routeName=route
    )["route"]["spec"]
    assert spec == route_spec(mesh, "httpRoute", 100, 0)


@pytest.mark.parametrize("kind", ["httpRoute", "http2Route", "tcpRoute"])
def test_app_mesh_route_switches_and_keeps_the_rest(
    env: ActivityEnvironment, mesh: Mesh, appmesh: "AppMeshClient", kind: str
) -> None:
    route = unique("route")
    appmesh.create_route(
        meshName=mesh.mesh_name,
        virtualRouterName=mesh.virtual_router_name,
        routeName=route,
        spec=route_spec(mesh, kind, 100, 0),
    )

    def described() -> Any:
        return appmesh.describe_route(
            meshName=mesh.mesh_name, virtualRouterName=mesh.virtual_router_name, routeName=route
        )["route"]

    router = mesh_input(mesh, route)
    assert switch_around(env, router) == [BLUE, GREEN, GREEN, GREEN, BLUE, BLUE]
    switch(env, router, "green")
    version = described()["metadata"]["version"]
    switch(env, router, "green")
    assert described()["metadata"]["version"] == version  # nothing to change, nothing written
    assert described()["spec"] == route_spec(mesh, kind, 0, 100)
    switch(env, router, "blue")
    assert described()["spec"] == route_spec(mesh, kind, 100, 0)


def test_app_mesh_route_without_both_colors_is_not_retried(
    env: ActivityEnvironment, mesh: Mesh, appmesh: "AppMeshClient"
) -> None:
    route = unique("route")
    appmesh.create_route(
        meshName=mesh.mesh_name,
        virtualRouterName=mesh.virtual_router_name,
        routeName=route,
        spec={
            "httpRoute": {
                "match": {"prefix": "/"},
                "action": {
                    "weightedTargets": [{"virtualNode": mesh.virtual_nodes["blue"], "weight": 1}]
                },
            }
        },
    )

    with pytest.raises(ApplicationError) as caught:
        env.run(read_router_weights, mesh_input(mesh, route))

    assert caught.value.non_retryable
    assert "does not route to green (game-green)" in caught.value.message


def test_app_mesh_missing_route_is_not_retried(env: ActivityEnvironment, mesh: Mesh) -> None:
    with pytest.raises(ApplicationError) as caught:
        env.run(read_router_weights, mesh_input(mesh, "nope"))

    assert caught.value.non_retryable
    assert caught.value.type == "RouteNotFound"
    assert caught.value.message.startswith(
        "appmesh.DescribeRoute: RouteNotFound: There is no route"
    )
