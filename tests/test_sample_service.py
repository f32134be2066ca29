"""The sample game service: real WebSocket sessions counted per version, the reconnect notice,
the plain HTTP endpoints, bad versions on purpose, the command line and its stop."""

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from local.processes import ROOT, free_port, game_server, wait_for_port, wait_until
from sample_service.behaviour import Behaviour, parse_behaviour
from sample_service.sessions import Sessions
from tests.players import StayingPlayers

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
def blue() -> Iterator[Client]:
    """Blue on version 1, a process of its own."""
    with game_server(free_port(), "blue", "1") as url:
        yield Client(url)


def test_health_and_version_name_color_and_version() -> None:
    with game_server(free_port(), "green", "7") as url:
        client = Client(url)
        assert client.call("GET", "/health") == (200, "ok color=green version=7")
        assert client.json("GET", "/version") == {"color": "green", "version": "7"}


def test_sessions_are_counted_per_client_version(blue: Client) -> None:
    with (
        StayingPlayers(blue.url, "1", count=2) as ones,
        StayingPlayers(blue.url, "2") as two,
    ):
        assert [w["version"] for w in ones.welcomes + two.welcomes] == ["1", "1", "1"]
        assert (blue.connections("1"), blue.connections("2"), blue.connections("9")) == (2, 1, 0)
        assert blue.connections() == 3
        ones.sessions[0].close()
        wait_until(lambda: blue.connections("1") == 1, 5, "one version-1 session left")
    wait_until(lambda: blue.connections() == 0, 5, "every session gone")


def test_the_welcome_and_an_ack_for_each_move(blue: Client) -> None:
    with StayingPlayers(blue.url, "1", count=2) as players:
        first, second = players.welcomes
        assert first == {"type": "welcome", "color": "blue", "version": "1", "session": "s1"}
        assert second["session"] == "s2"
        session = players.sessions[0]
        for game in (1, 1, 2):
            session.send(json.dumps({"type": "move", "game": game}))
            assert players.received() == {"type": "ack", "game": game}
        session.send("not a move")
        assert players.received()["type"] == "error"


def test_a_session_without_the_header_is_on_the_servers_version(blue: Client) -> None:
    with StayingPlayers(blue.url, None) as players:
        assert players.welcomes[0]["version"] == "1"
        assert blue.connections("1") == 1


def test_reconnect_tells_that_versions_sessions_once(blue: Client) -> None:
    with (
        StayingPlayers(blue.url, "1", count=2) as old,
        StayingPlayers(blue.url, "2") as new,
    ):
        assert blue.json("POST", "/reconnect", "1") == {"notified": 2}
        assert old.received(0) == old.received(1) == {"type": "reconnect"}
        with pytest.raises(TimeoutError):
            new.received(timeout=0.5)

        # Told before: counted, not told again.
        assert blue.json("POST", "/reconnect", "1") == {"notified": 2}
        with pytest.raises(TimeoutError):
            old.received(timeout=0.5)
        # The notice closes nothing: the player closes once its game is done.
        assert blue.connections("1") == 2

        old.leave()
        wait_until(lambda: blue.connections("1") == 0, 5, "the told sessions closed")
        assert blue.json("POST", "/reconnect", "1") == {"notified": 0}
        assert blue.connections("2") == 1


def test_reconnect_without_the_header_is_for_the_servers_version(blue: Client) -> None:
    with StayingPlayers(blue.url, "1") as players:
        status, body = blue.call("POST", "/reconnect")
        assert (status, json.loads(body)) == (202, {"notified": 1})
        assert players.received() == {"type": "reconnect"}


def test_unknown_paths_and_methods(blue: Client) -> None:
    status, body = blue.call("GET", "/nope")
    assert (status, json.loads(body)) == (404, {"error": "no such endpoint: /nope"})
    assert blue.call("GET", "/players")[0] == 404
    status, body = blue.call("DELETE", "/health")
    assert (status, json.loads(body)) == (405, {"error": "DELETE not allowed on /health"})
    assert blue.call("GET", "/reconnect")[0] == 405
    assert blue.call("POST", "/play")[0] == 405
    # /play without the upgrade: a WebSocket endpoint, not a page.
    assert blue.call("GET", "/play")[0] == 426


def test_errors20_fails_every_fifth_version_request() -> None:
    with game_server(free_port(), "green", "3-errors20") as url:
        client = Client(url)
        statuses = [client.call("GET", "/version")[0] for _ in range(20)]
        assert statuses == [200, 200, 200, 200, 500] * 4
        assert client.json("GET", "/version") == {"color": "green", "version": "3-errors20"}
        assert client.call("GET", "/health") == (200, "ok color=green version=3-errors20")


def test_unhealthy_answers_503_to_health_only() -> None:
    with game_server(free_port(), "green", "3-unhealthy") as url:
        client = Client(url)
        assert client.call("GET", "/health") == (503, "unhealthy color=green version=3-unhealthy")
        assert [client.call("GET", "/version")[0] for _ in range(10)] == [200] * 10


def test_behaviours_from_the_version() -> None:
    assert parse_behaviour("3") == Behaviour()
    assert parse_behaviour("3-errors20") == Behaviour(error_percent=20)
    assert parse_behaviour("3-unhealthy") == Behaviour(unhealthy=True)
    assert parse_behaviour("3-errors5-unhealthy") == Behaviour(error_percent=5, unhealthy=True)
    # Anything else after a dash is just part of the version.
    for version in ("3-beta", "3-errors0", "3-errors101", "3-errorsx", "3-Unhealthy", "errors20"):
        assert parse_behaviour(version) == Behaviour(), version
    assert sum(Behaviour(error_percent=7).fails(n) for n in range(1, 101)) == 7
    assert [Behaviour(error_percent=100).fails(n) for n in (1, 2)] == [True, True]


def test_sessions_state() -> None:
    sessions = Sessions()
    a, b, c = sessions.open("1"), sessions.open("1"), sessions.open("2")
    assert [s.session_id for s in (a, b, c)] == ["s1", "s2", "s3"]
    assert (sessions.count("1"), sessions.count(), sessions.count("9")) == (2, 3, 0)

    assert sessions.tell("1") == ([a, b], 2)
    d = sessions.open("1")
    assert sessions.tell("1") == ([d], 3)
    sessions.close(a)
    sessions.close(a)
    assert sessions.tell("1") == ([], 2)
    assert not c.told


def test_sigterm_closes_every_session_with_going_away_and_exits_0() -> None:
    port = free_port()
    command = [sys.executable, "-m", "sample_service", "--port", str(port), "--color", "blue"]
    command += ["--version", "3"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, 10, process)
        client = Client(f"http://127.0.0.1:{port}")
        assert client.call("GET", "/health") == (200, "ok color=blue version=3")
        with StayingPlayers(client.url, "3", count=2) as players:
            client.json("POST", "/reconnect", "3")
            process.send_signal(signal.SIGTERM)
            for session in players.sessions:
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        session.recv(timeout=5)  # the notice, then the close
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == CloseCode.GOING_AWAY
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=10)[1].decode()
    assert process.returncode == 0, stderr
    lines = stderr.splitlines()
    assert all(line.startswith("[blue v3] ") for line in lines), stderr
    assert "[blue v3] session s1 opened on version 3" in lines
    assert "[blue v3] reconnect notice to 2 session(s) on version 3" in lines
    assert "[blue v3] session s2 closed (code 1001)" in lines
    assert lines[-1] == "[blue v3] sample game server stopped"
    # No line per plain HTTP request: load generators send hundreds a second.
    assert not any("/health" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--color", "blue"], "the following arguments are required: --version"),
        (["--color", "red", "--version", "1"], "argument --color: invalid choice: 'red'"),
        (["--color", "blue", "--version", "1 2"], "--version must be one word"),
        (["--color", "blue", "--version", ""], "--version must be one word"),
        (["--color", "blue", "--version", "1", "--players", "4"], "unrecognized arguments"),
    ],
)
def test_command_line_errors(args: list[str], said: str) -> None:
    command = [sys.executable, "-m", "sample_service", "--port", str(free_port()), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert said in done.stderr


def test_a_taken_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "sample_service", "--port", str(port)]
        command += ["--color", "blue", "--version", "1"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(f"sample_service: cannot listen on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1
