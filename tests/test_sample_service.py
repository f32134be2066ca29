"""The sample game service: counts per version, join and leave, reconnect draining, the CLI."""

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.processes import ROOT, free_port, wait_for_port, wait_until
from sample_service.game_server import GameServer, make_server
from sample_service.lobby import Lobby

HEADER = "X-Game-Version"


class Client:
    """Plain HTTP calls to one server; every answer is (status, text)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, version: str | None = None) -> tuple[int, str]:
        headers = {HEADER: version} if version is not None else {}
        request = urllib.request.Request(self.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode()

    def json(self, method: str, path: str, version: str | None = None) -> Any:
        status, body = self.call(method, path, version)
        assert 200 <= status < 300, (status, body)
        return json.loads(body)

    def connections(self, version: str | None = None) -> int:
        count: int = self.json("GET", "/connections", version)["connections"]
        return count


@pytest.fixture
def serve() -> Iterator[Callable[..., Client]]:
    """Start servers in this process, on free ports; all are shut down after the test."""
    running: list[tuple[GameServer, threading.Thread]] = []

    def start(color: str = "blue", version: str = "1", **options: Any) -> Client:
        server = make_server(0, color, version, **options)
        # A short poll interval: shutdown() waits for it, in every teardown.
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return Client(server.url)

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join(5)
        server.server_close()


def test_health_names_color_and_version(serve: Callable[..., Client]) -> None:
    status, body = serve("green", "7").call("GET", "/health")
    assert (status, body) == (200, "ok color=green version=7")


def test_seeded_players_count_per_version(serve: Callable[..., Client]) -> None:
    client = serve(version="1", players=3)
    client.json("POST", "/players", "2")

    assert client.connections("1") == 3
    assert client.connections("2") == 1
    assert client.connections("9") == 0
    assert client.connections() == 4


def test_join_without_header_uses_the_server_version(serve: Callable[..., Client]) -> None:
    client = serve(version="5")
    status, body = client.call("POST", "/players")
    assert status == 201
    assert json.loads(body)["player_id"]
    assert client.connections("5") == 1


def test_join_and_leave(serve: Callable[..., Client]) -> None:
    client = serve()
    first = client.json("POST", "/players", "1")["player_id"]
    second = client.json("POST", "/players", "1")["player_id"]
    assert first != second

    assert client.call("DELETE", f"/players/{first}") == (204, "")
    assert client.connections("1") == 1
    assert client.call("DELETE", f"/players/{first}")[0] == 404


def test_reconnect_drains_that_version_only(serve: Callable[..., Client]) -> None:
    client = serve(version="1", players=4, game_seconds=1)
    client.json("POST", "/players", "2")

    assert client.json("POST", "/reconnect", "1") == {"notified": 4}

    wait_until(lambda: client.connections("1") == 0, 10, "drained")
    assert client.connections("2") == 1


def test_players_finish_their_game_before_leaving(serve: Callable[..., Client]) -> None:
    client = serve(version="1", players=2, game_seconds=30)
    client.json("POST", "/reconnect", "1")
    # Every game lasts at least half a second more: nobody has left yet.
    assert client.connections("1") == 2


def test_reconnect_twice_is_harmless(serve: Callable[..., Client]) -> None:
    client = serve(version="1", players=2, game_seconds=1)
    assert client.json("POST", "/reconnect", "1") == {"notified": 2}
    assert client.json("POST", "/reconnect", "1") == {"notified": 2}
    wait_until(lambda: client.connections("1") == 0, 10, "drained")
    assert client.json("POST", "/reconnect", "1") == {"notified": 0}


def test_unknown_paths_and_methods(serve: Callable[..., Client]) -> None:
    client = serve()
    assert client.call("GET", "/nope")[0] == 404
    assert client.call("DELETE", "/players/")[0] == 404
    assert client.call("GET", "/players")[0] == 405
    assert client.call("DELETE", "/health")[0] == 405


def test_notified_players_leave_when_their_game_ends() -> None:
    now = [100.0]
    lobby = Lobby(game_seconds=10, clock=lambda: now[0])
    for _ in range(3):
        lobby.join("1")

    lobby.notify_reconnect("1")
    now[0] += 0.49
    assert lobby.count("1") == 3
    now[0] += 9.51
    assert lobby.count("1") == 0


def test_game_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="game_seconds"):
        Lobby(game_seconds=0)


def test_command_line_serves_until_sigterm() -> None:
    port = free_port()
    command = [sys.executable, "-m", "sample_service", "--port", str(port), "--color", "blue"]
    command += ["--version", "3", "--players", "2", "--game-seconds", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, 10, process)
        client = Client(f"http://127.0.0.1:{port}")
        assert client.connections("3") == 2
        assert client.call("GET", "/health") == (200, "ok color=blue version=3")
    finally:
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=10)[1].decode()
    assert process.returncode == 0, stderr
    assert '"GET /health HTTP/1.1" 200' in stderr
    assert "stopped" in stderr
