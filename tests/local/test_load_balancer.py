"""The local ALB: HAProxy following the router weights and the targets in moto."""

import http.client
import logging
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from local.data_plane.haproxy import Haproxy, RuntimeApi, backend_name, server_weights
from local.data_plane.load_balancer import (
    LoadBalancerFollower,
    parse_server_name,
    region_traffic,
)
from local.processes import free_port, wait_until
from models.activities import RouterInput
from models.colors import COLORS, Color
from models.config import AlbRouter, AppMeshRouter, ColorConfig
from tests.activities.aws_resources import REGION, Alb, Mesh, unique, weighted_forward
from tests.factories import environment
from tests.local.data_plane import Backend, shares, split

if TYPE_CHECKING:
    from mypy_boto3_appmesh import AppMeshClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

Follow = Callable[[RouterInput], LoadBalancerFollower]
FOLLOW_BOUND = 5
"""Seconds HAProxy may take to follow moto in these tests: generous, the machine is shared
(the lag measured is printed; it is about 0.1 s)."""


def alb_router(alb: Alb) -> RouterInput:
    return RouterInput(
        region=REGION,
        router=AlbRouter(kind="alb", listener_arn=alb.listener_arn),
        blue=ColorConfig(cluster="b", service="game", target_group_arn=alb.target_groups["blue"]),
        green=ColorConfig(cluster="g", service="game", target_group_arn=alb.target_groups["green"]),
    )


def set_listener(elbv2: "ElasticLoadBalancingv2Client", alb: Alb, blue: int, green: int) -> None:
    elbv2.modify_listener(
        ListenerArn=alb.listener_arn,
        DefaultActions=[weighted_forward(alb.target_groups, blue, green)],
    )


def ready_weights(proxy: Haproxy) -> dict[Color, list[int]]:
    """The weights of each color's servers taking new requests."""
    weights: dict[Color, list[int]] = {"blue": [], "green": []}
    for server in proxy.api.servers(backend_name(REGION)):
        parsed = parse_server_name(server.name)
        if parsed and server.admin_state == "ready":
            weights[parsed[0]].append(server.weight)
    return weights


def expected(blue: int, green: int, tasks: dict[Color, int]) -> dict[Color, list[int]]:
    router_weights: dict[Color, int] = {"blue": blue, "green": green}
    weights = server_weights(router_weights, tasks)
    return {color: [weights[color]] * tasks[color] for color in COLORS}


def wait_for_weights(proxy: Haproxy, wanted: dict[Color, list[int]]) -> None:
    wait_until(lambda: ready_weights(proxy) == wanted, FOLLOW_BOUND, f"HAProxy weighing {wanted}")


def register(
    elbv2: "ElasticLoadBalancingv2Client",
    alb: Alb,
    blue: Sequence[Backend] = (),
    green: Sequence[Backend] = (),
) -> None:
    for backend in blue:
        backend.register(elbv2, alb.target_groups["blue"])
    for backend in green:
        backend.register(elbv2, alb.target_groups["green"])


def test_the_split_follows_the_listener_weights(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    follow: Follow,
) -> None:
    blue = [backends(f"blue-{i}") for i in range(3)]
    green = [backends("green-0")]
    register(elbv2, alb, blue=blue, green=green)
    set_listener(elbv2, alb, 90, 10)
    follow(alb_router(alb))
    tasks: dict[Color, int] = {"blue": 3, "green": 1}

    wait_for_weights(haproxy, expected(90, 10, tasks))
    answered = split(haproxy, 1000)
    colors: dict[str, Color] = {"green-0": "green"}
    for backend in blue:
        colors[backend.name] = "blue"
    assert shares(answered, colors)["blue"] == pytest.approx(0.9, abs=0.03)
    for backend in blue:  # the tasks of a color share its part
        assert answered[backend.name] / 1000 == pytest.approx(0.3, abs=0.03)

    set_listener(elbv2, alb, 0, 100)
    wait_for_weights(haproxy, expected(0, 100, tasks))
    assert split(haproxy, 1000) == {"green-0": 1000}

    traffic = region_traffic(haproxy.api, REGION)
    assert (
        traffic.colors["blue"].requests
        == answered["blue-0"] + answered["blue-1"] + answered["blue-2"]
    )
    assert traffic.colors["green"].sessions == answered["green-0"] + 1000
    assert traffic.total.requests == 2000
    assert traffic.total.econ == traffic.total.wretr == traffic.total.wredis == 0


def test_a_weight_change_in_moto_reaches_haproxy(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    follow: Follow,
) -> None:
    register(elbv2, alb, blue=[backends("blue")], green=[backends("green")])
    follow(alb_router(alb))
    tasks: dict[Color, int] = {"blue": 1, "green": 1}
    lags: list[float] = []
    for change in range(20):
        blue = [0, 100, 90, 10, 50][change % 5]
        wanted = expected(blue, 100 - blue, tasks)
        # Changes at varied moments of the follower's 0.1 s cycle, not right after its syncs.
        time.sleep(change * 0.037 % 0.1)
        set_listener(elbv2, alb, blue, 100 - blue)
        changed = time.monotonic()
        deadline = changed + FOLLOW_BOUND
        while ready_weights(haproxy) != wanted:
            assert time.monotonic() < deadline, f"HAProxy not at {wanted} after {FOLLOW_BOUND}s"
            time.sleep(0.005)
        lags.append(time.monotonic() - changed)
    print(
        f"\nweight-follow lag over {len(lags)} changes: median "
        f"{statistics.median(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms"
    )


def test_a_deregistered_target_is_drained_not_cut(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    follow: Follow,
) -> None:
    leaving, staying = backends("blue-leaving"), backends("blue-staying")
    register(elbv2, alb, blue=[leaving])
    follow(alb_router(alb))
    wait_for_weights(haproxy, {"blue": [256], "green": []})
    held: list[Any] = []

    def long_session() -> None:  # a player's long request, answered once the test releases it
        url = f"{haproxy.player_url(REGION)}/hold"
        with urllib.request.urlopen(url, timeout=30) as answer:
            held.append((answer.status, answer.read().decode()))

    session = threading.Thread(target=long_session, daemon=True)
    session.start()
    assert leaving.held.acquire(timeout=10), "the long request never reached its task"
    register(elbv2, alb, blue=[staying])
    leaving.deregister(elbv2, alb.target_groups["blue"])

    def state_of(backend: Backend) -> list[tuple[str, str]]:
        servers = haproxy.api.servers(backend_name(REGION))
        where = (backend.address, backend.port)
        return [(s.name, s.admin_state) for s in servers if (s.address, s.port) == where]

    wait_until(lambda: [s for _, s in state_of(leaving)] == ["drain"], FOLLOW_BOUND, "draining")
    wait_for_weights(haproxy, {"blue": [256], "green": []})
    assert split(haproxy, 20) == {"blue-staying": 20}  # no new requests for the leaving task
    assert not held  # while its session goes on

    leaving.release()
    session.join(10)
    assert held == [(200, "blue-leaving")]
    wait_until(lambda: [s for _, s in state_of(leaving)] == ["maint"], FOLLOW_BOUND, "retired")
    [(retired, _)] = state_of(leaving)
    # Retired, not deleted: its counters stay in the color's.
    assert region_traffic(haproxy.api, REGION).colors["blue"].requests == 21

    leaving.register(elbv2, alb.target_groups["blue"])  # back: a new server, never the old name
    wait_for_weights(haproxy, {"blue": [256, 256], "green": []})
    states = dict(state_of(leaving))
    assert states.pop(retired) == "maint"
    assert list(states.values()) == ["ready"]


def test_a_killed_task_shows_in_the_counters(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    follow: Follow,
) -> None:
    alive, dying = backends("blue-alive"), backends("blue-dying")
    register(elbv2, alb, blue=[alive, dying])
    follow(alb_router(alb))
    wait_for_weights(haproxy, {"blue": [256, 256], "green": []})
    statuses: list[int] = []
    disconnected: list[int] = []
    stop = threading.Event()

    def player() -> None:
        connection = http.client.HTTPConnection(haproxy.host, haproxy.players[REGION], timeout=10)
        while not stop.is_set():
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
            except http.client.RemoteDisconnected:
                # A request already sent to the task when it died: HAProxy closes the player's
                # keep-alive connection without an answer, and the player sends it again, as
                # a browser does (RFC 9112, 9.3.1). The counters show it (eresp).
                connection.close()
                disconnected.append(len(statuses))
                continue
            response.read()
            statuses.append(response.status)
        connection.close()

    sending = threading.Thread(target=player, daemon=True)
    sending.start()
    wait_until(lambda: len(statuses) >= 50, 10, "50 requests answered")
    dying.kill()  # still registered in moto: HAProxy keeps sending it requests
    killed_at = len(statuses)
    wait_until(lambda: len(statuses) >= killed_at + 100, 10, "100 more requests answered")
    stop.set()
    sending.join(10)

    traffic = region_traffic(haproxy.api, REGION)
    blue, total = traffic.colors["blue"], traffic.total
    assert blue.econ + blue.wretr + blue.wredis > 0
    assert total.econ + total.wretr + total.wredis > 0
    assert blue.eresp == total.eresp == len(disconnected)
    assert set(statuses) == {200}  # retried elsewhere: the players never saw the dead task


def test_app_mesh_route_weights_are_followed(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    mesh: Mesh,
    appmesh: "AppMeshClient",
    target_groups: dict[Color, str],
    elbv2: "ElasticLoadBalancingv2Client",
    follow: Follow,
) -> None:
    route = unique("route")

    def route_spec(blue: int, green: int) -> Any:
        targets = [
            {"virtualNode": mesh.virtual_nodes["blue"], "weight": blue},
            {"virtualNode": mesh.virtual_nodes["green"], "weight": green},
        ]
        return {"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": targets}}}

    def put_route(blue: int, green: int) -> None:
        update = appmesh.update_route if created else appmesh.create_route
        update(
            meshName=mesh.mesh_name,
            virtualRouterName=mesh.virtual_router_name,
            routeName=route,
            spec=route_spec(blue, green),
        )
        created.append(route)

    created: list[str] = []
    put_route(100, 0)
    blue, green = backends("blue"), backends("green")
    blue.register(elbv2, target_groups["blue"])
    green.register(elbv2, target_groups["green"])
    follow(
        RouterInput(
            region=REGION,
            router=AppMeshRouter(
                kind="app_mesh",
                mesh_name=mesh.mesh_name,
                virtual_router_name=mesh.virtual_router_name,
                route_name=route,
            ),
            blue=ColorConfig(
                cluster="b",
                service="game",
                target_group_arn=target_groups["blue"],
                virtual_node=mesh.virtual_nodes["blue"],
            ),
            green=ColorConfig(
                cluster="g",
                service="game",
                target_group_arn=target_groups["green"],
                virtual_node=mesh.virtual_nodes["green"],
            ),
        )
    )
    tasks: dict[Color, int] = {"blue": 1, "green": 1}
    wait_for_weights(haproxy, expected(100, 0, tasks))

    put_route(30, 70)
    wait_for_weights(haproxy, expected(30, 70, tasks))
    answered = split(haproxy, 1000)
    assert shares(answered, {"blue": "blue", "green": "green"})["green"] == pytest.approx(
        0.7, abs=0.03
    )


def test_sync_writes_only_what_changed(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(elbv2, alb, blue=[backends("blue")], green=[backends("green")])
    colors = {
        color: {
            "cluster": color,
            "service": "game",
            "target_group_arn": alb.target_groups[color],
            "url": "http://127.0.0.1:1",
        }
        for color in COLORS
    }
    config = environment(router={"kind": "alb", "listener_arn": alb.listener_arn}, **colors)
    follower = LoadBalancerFollower.for_environment(config, REGION, haproxy.api)
    sent: list[str] = []
    command = haproxy.api.command

    def recorded(line: str) -> str:
        sent.append(line)
        return command(line)

    monkeypatch.setattr(haproxy.api, "command", recorded)
    assert follower.backend == backend_name(REGION)

    first = follower.sync()
    assert [change.split()[0] for change in first] == ["add", "add"]
    sent.clear()
    assert follower.sync() == []
    assert follower.sync() == []
    assert all(line.startswith("show ") for line in sent)

    set_listener(elbv2, alb, 0, 100)
    sent.clear()
    changes = follower.sync()
    assert [change.split()[0] for change in changes] == ["weight", "weight"]
    writes = [line for line in sent if not line.startswith("show ")]
    # Green's weight up first, then blue's down: never a moment with no server to take one.
    servers_and_weights = [(line.split()[2].split("/")[1], line.split()[-1]) for line in writes]
    assert [(name.split("-")[0], weight) for name, weight in servers_and_weights] == [
        ("green", "256"),
        ("blue", "0"),
    ]


def test_run_goes_on_through_errors(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    elbv2: "ElasticLoadBalancingv2Client",
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="local.data_plane")
    register(elbv2, alb, blue=[backends("blue")])
    api = RuntimeApi(haproxy.host, free_port())  # no HAProxy there yet
    follower = LoadBalancerFollower(alb_router(alb), api)
    syncs: list[float] = []
    sync = follower.sync

    def counted() -> list[str]:
        syncs.append(time.monotonic())
        return sync()

    monkeypatch.setattr(follower, "sync", counted)
    stop = threading.Event()
    running = threading.Thread(target=follower.run, args=(stop, 0.05), daemon=True)
    running.start()
    try:
        wait_until(lambda: len(syncs) >= 5, 10, "five syncs tried")
        failures = [r for r in caplog.records if "failed, retrying" in r.getMessage()]
        assert len(failures) == 1  # once per distinct error, not once per sync
        assert "ConnectionRefusedError" in failures[0].getMessage()

        api.port = haproxy.runtime_port  # HAProxy is there now
        wait_for_weights(haproxy, {"blue": [256], "green": []})
        assert any("works again" in r.getMessage() for r in caplog.records)
        assert running.is_alive()
    finally:
        stop.set()
        running.join(10)
    assert not running.is_alive()


def test_every_color_needs_its_target_group(alb: Alb, haproxy: Haproxy) -> None:
    router = alb_router(alb)
    without = router.model_copy(
        update={"green": ColorConfig(cluster="g", service="game", virtual_node="game-green")}
    )
    with pytest.raises(ValueError, match="green: target_group_arn is needed"):
        LoadBalancerFollower(without, haproxy.api)
