"""The colors' gateway: one URL per color in front of all its tasks, for the deployment's
direct calls (counting and notifying sessions, integration checks)."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from local.data_plane.gateway import serving_gateway
from local.processes import free_port, game_server
from tests.players import StayingPlayers


@pytest.fixture(scope="module")
def tasks() -> Iterator[list[str]]:
    """Two blue tasks of version 1, as the ECS stand-in would run them."""
    with ExitStack() as stack:
        yield [stack.enter_context(game_server(free_port(), "blue", "1")) for _ in range(2)]


@pytest.fixture
def gateway(tasks: list[str]) -> Iterator[str]:
    """Blue runs ``tasks``, green runs none; no other region or color exists."""
    running = {("us-west-2", "blue"): tasks, ("us-west-2", "green"): []}
    port = free_port()
    with serving_gateway("127.0.0.1", port, lambda r, c: running.get((r, c))):
        yield f"http://127.0.0.1:{port}"


def call(url: str, method: str = "GET", version: str | None = None) -> tuple[int, Any]:
    headers = {"X-Game-Version": version} if version else {}
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def test_connections_and_notices_cover_every_task(gateway: str, tasks: list[str]) -> None:
    blue = f"{gateway}/us-west-2/blue"
    with StayingPlayers(tasks[0], "1", 2) as first, StayingPlayers(tasks[1], "1", 1) as second:
        assert call(f"{blue}/connections", version="1") == (200, json.dumps({"connections": 3}))
        assert call(f"{blue}/connections", version="2") == (200, json.dumps({"connections": 0}))

        assert call(f"{blue}/reconnect", "POST", "1") == (202, json.dumps({"notified": 3}))

        # Each session on each task got the notice.
        for players in (first, second):
            for session in range(len(players.sessions)):
                assert players.received(session)["type"] == "reconnect"


def test_other_requests_are_passed_to_a_task(gateway: str, tasks: list[str]) -> None:
    answers = {call(f"{gateway}/us-west-2/blue/health") for _ in range(4)}
    assert answers == {(200, "ok color=blue version=1")}


def test_a_color_without_tasks_or_an_unknown_one_is_said_so(gateway: str) -> None:
    status, body = call(f"{gateway}/us-west-2/green/health")
    assert status == 503 and "runs no task" in body
    status, body = call(f"{gateway}/eu-west-1/blue/connections")
    assert status == 404 and "no color 'blue' in region 'eu-west-1'" in body
