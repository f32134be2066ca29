"""HAProxy for the local data plane: its weights, its configuration, its Runtime API."""

import itertools
import shutil
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from local.data_plane import haproxy as haproxy_module
from local.data_plane.haproxy import (
    MAX_WEIGHT,
    Haproxy,
    RuntimeApiError,
    backend_name,
    check_config,
    haproxy_binary,
    haproxy_config,
    server_weights,
)
from local.processes import wait_until
from tests.activities.aws_resources import REGION
from tests.local.data_plane import Backend, loopback_address, split

# --- server_weights: pure --------------------------------------------------------------------


def test_weights_give_each_color_its_share_however_many_tasks() -> None:
    weights = server_weights({"blue": 90, "green": 10}, {"blue": 3, "green": 1})

    assert weights == {"blue": 255, "green": 85}  # each blue task 0.9 / 3, green's 0.1: 3 : 1


def test_weights_all_to_one_color() -> None:
    assert server_weights({"blue": 0, "green": 100}, {"blue": 3, "green": 1}) == {
        "blue": 0,
        "green": MAX_WEIGHT,
    }
    assert server_weights({"blue": 1, "green": 0}, {"blue": 2, "green": 0}) == {
        "blue": MAX_WEIGHT,
        "green": 0,
    }


def test_a_share_above_zero_never_rounds_to_zero() -> None:
    weights = server_weights({"blue": 999, "green": 1}, {"blue": 50, "green": 1})
    assert weights["green"] >= 1
    # The floor of 1 beside at most 256 bounds the precision: 3.8 % instead of 1 % here.
    assert server_weights({"blue": 99, "green": 1}, {"blue": 1, "green": 10}) == {
        "blue": MAX_WEIGHT,
        "green": 1,
    }

    tiny = server_weights({"blue": 1, "green": 999}, {"blue": 1, "green": 1})
    assert tiny == {"blue": 1, "green": MAX_WEIGHT}


def test_nothing_to_weigh() -> None:
    assert server_weights({"blue": 0, "green": 0}, {"blue": 2, "green": 2}) == {
        "blue": 0,
        "green": 0,
    }
    # A color without tasks takes nothing; the other one gets all it can.
    assert server_weights({"blue": 50, "green": 50}, {"blue": 2, "green": 0}) == {
        "blue": MAX_WEIGHT,
        "green": 0,
    }


@pytest.mark.parametrize("tasks", list(itertools.product([1, 2, 3, 7, 10], repeat=2)))
def test_weights_follow_shares_in_steps_of_five_exactly(tasks: tuple[int, int]) -> None:
    blue_tasks, green_tasks = tasks
    for blue in range(0, 101, 5):
        shares = {"blue": blue, "green": 100 - blue}
        weights = server_weights(shares, {"blue": blue_tasks, "green": green_tasks})
        assert all(0 <= w <= MAX_WEIGHT for w in weights.values())
        total = weights["blue"] * blue_tasks + weights["green"] * green_tasks
        assert weights["blue"] * blue_tasks / total == pytest.approx(blue / 100)


# --- the binary and the configuration --------------------------------------------------------


def test_a_missing_haproxy_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    monkeypatch.setattr(haproxy_module, "DEBIAN_HAPROXY", tmp_path / "haproxy")

    with pytest.raises(
        RuntimeError, match=r"^haproxy is not installed: run `make system-packages`$"
    ):
        haproxy_binary()


def test_the_config_passes_haproxy_check(tmp_path: Path) -> None:
    config = haproxy_config(
        {"us-west-2": 18080, "eu-west-1": 18081}, runtime_port=18090, stats_port=18091
    )
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)

    check_config(path)
    for name in ("players-us-west-2", "tasks-us-west-2", "players-eu-west-1", "tasks-eu-west-1"):
        assert f" {name}\n" in config
    assert "stats socket ipv4@127.0.0.1:18090 level admin" in config
    assert "bind 127.0.0.1:18081" in config

    path.write_text(config.replace("balance roundrobin", "balance nonsense"))
    with pytest.raises(RuntimeError, match="haproxy -c refused"):
        check_config(path)


def test_stats_page_and_prometheus_metrics(haproxy: Haproxy) -> None:
    with urllib.request.urlopen(haproxy.stats_url, timeout=10) as page:
        assert backend_name(REGION) in page.read().decode()
    with urllib.request.urlopen(haproxy.metrics_url, timeout=10) as metrics:
        assert "haproxy_backend_" in metrics.read().decode()


# --- the Runtime API ---------------------------------------------------------------------------


def test_add_weigh_drain_and_delete_servers(
    haproxy: Haproxy, backends: Callable[[str], Backend]
) -> None:
    api, backend = haproxy.api, backend_name(REGION)
    one, two = backends("one"), backends("two")
    api.add_server(backend, "one", one.address, one.port, 200)
    api.add_server(backend, "two", two.address, two.port, 100)

    servers = {s.name: s for s in api.servers(backend)}
    assert (servers["one"].address, servers["one"].port) == (one.address, one.port)
    assert [(s.weight, s.admin_state, s.running) for s in servers.values()] == [
        (200, "ready", True),
        (100, "ready", True),
    ]
    assert split(haproxy, 300) == {"one": 200, "two": 100}

    api.set_weight(backend, "two", 0)
    assert split(haproxy, 30) == {"one": 30}

    api.set_weight(backend, "two", 10)
    api.set_state(backend, "one", "drain")
    assert {s.name: s.admin_state for s in api.servers(backend)} == {"one": "drain", "two": "ready"}
    assert split(haproxy, 30) == {"two": 30}
    assert api.delete_server(backend, "one") is False  # only a server in maintenance

    api.set_state(backend, "one", "maint")
    assert api.delete_server(backend, "one") is True
    assert [s.name for s in api.servers(backend)] == ["two"]

    rows = {row.svname: row for row in api.stats(backend)}
    assert set(rows) == {"two", "BACKEND"}
    assert (rows["two"].type, rows["two"].uweight, rows["two"].stot) == ("server", 10, 130)
    assert (rows["two"].hrsp_2xx, rows["two"].req_tot) == (130, 130)
    assert (rows["BACKEND"].type, rows["BACKEND"].stot) == ("backend", 360)


def test_haproxy_errors_are_raised(haproxy: Haproxy, backends: Callable[[str], Backend]) -> None:
    api, backend = haproxy.api, backend_name(REGION)
    one = backends("one")
    api.add_server(backend, "one", one.address, one.port, 1)

    with pytest.raises(RuntimeApiError, match="No such server"):
        api.set_weight(backend, "nobody", 1)
    with pytest.raises(RuntimeApiError, match="Already exists a server"):
        api.add_server(backend, "one", one.address, one.port, 1)
    with pytest.raises(RuntimeApiError, match="Can't find backend"):
        api.servers("tasks-nowhere")
    with pytest.raises(RuntimeApiError, match="Unknown command"):
        api.command("show nonsense")
    with pytest.raises(ValueError, match="0 … 256"):
        api.set_weight(backend, "one", 257)
    with pytest.raises(ValueError, match="one Runtime API command"):
        api.command("show info; shutdown frontend players")


def test_a_websocket_goes_on_through_a_drain(haproxy: Haproxy) -> None:
    def echo(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    api, backend = haproxy.api, backend_name(REGION)
    with serve(echo, loopback_address(), 0) as server:
        address, port = server.socket.getsockname()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        api.add_server(backend, "game", address, port, 1)
        url = f"ws://{haproxy.host}:{haproxy.players[REGION]}/play"
        with connect(url, open_timeout=10) as player:
            player.send("move 1")
            assert player.recv(timeout=10) == "move 1"

            api.set_state(backend, "game", "drain")
            player.send("move 2")  # the game in progress goes on
            assert player.recv(timeout=10) == "move 2"
            [row] = [r for r in api.stats(backend) if r.svname == "game"]
            assert (row.status, row.scur) == ("DRAIN", 1)
            with pytest.raises(InvalidStatus):  # a new one finds no server
                connect(url, open_timeout=10)
            player.send("move 3")
            assert player.recv(timeout=10) == "move 3"


def test_the_runtime_api_goes_when_haproxy_does(haproxy: Haproxy) -> None:
    assert haproxy.api.answers()
    haproxy.process.terminate()
    wait_until(lambda: not haproxy.api.answers(), 10, "HAProxy gone")
    with pytest.raises(OSError):
        haproxy.api.servers(backend_name(REGION))
