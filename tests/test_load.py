"""The load generator against sample game servers started as processes: requests counted per
color and per second, players reconnecting after the notice with nothing cut, and the negative
control: a server stopped mid-game cuts sessions and fails requests. Also the loopback-only
rule, the command line and the background process."""

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.load import (
    LoadResult,
    LoadSettings,
    load_in_background,
    parse_args,
    run,
)
from local.load.result import Second, Tally
from local.processes import ROOT, background, free_port, game_server

pytestmark = pytest.mark.timeout(30)


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds, the event loop running meanwhile; TimeoutError after
    ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() >= deadline:
            raise TimeoutError(f"not {what} after {timeout:g}s")
        await asyncio.sleep(0.05)


def reconnect(url: str, version: str) -> int:
    """POST /reconnect as the drain phase does; how many sessions were told."""
    request = urllib.request.Request(
        f"{url}/reconnect", method="POST", headers={"X-Game-Version": version}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        notified: int = json.loads(answer.read())["notified"]
        return notified


@pytest.fixture
def blue() -> Iterator[str]:
    with game_server(free_port(), "blue", "1") as url:
        yield url


async def test_requests_are_counted_per_color_and_per_second() -> None:
    with game_server(free_port(), "green", "2") as url:
        began = asyncio.get_running_loop().time()
        settings = LoadSettings(url=url, requests_per_second=40, max_requests=60, seconds=20)
        result = await run(settings)
        took = asyncio.get_running_loop().time() - began

    assert result.requests.model_dump() == {
        "sent": 60,
        "failed": 0,
        "by_color": {"green": 60},
        "failure_reasons": {},
    }
    # Paced, not sent at once; and over by itself once the 60 were answered.
    assert 1.2 < took < 10
    assert [s.second for s in result.timeline] == list(range(len(result.timeline)))
    assert sum(s.ok.get("green", 0) for s in result.timeline) == 60
    assert result.timeline[0].ok["green"] <= 41
    assert result.sessions.opened == 0
    assert result.started_at < result.ended_at


async def test_failed_requests_are_counted_with_their_reason() -> None:
    with game_server(free_port(), "green", "3-errors20") as url:
        settings = LoadSettings(url=url, requests_per_second=50, max_requests=20, seconds=20)
        result = await run(settings)

    assert (result.requests.sent, result.requests.failed) == (20, 4)
    assert result.requests.by_color == {"green": 16}
    assert result.requests.failure_reasons == {"HTTP 500": 4}
    assert sum(s.failed for s in result.timeline) == 4


async def test_players_told_to_reconnect_finish_their_game_and_come_back_uncut(
    blue: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    settings = LoadSettings(
        url=blue, players=3, game_seconds=1, move_interval=0.1, seconds=20, ready=ready
    )
    tally, stop = Tally(), asyncio.Event()
    load = asyncio.create_task(run(settings, stop, tally))
    try:
        await until(ready.exists, 10, "every player welcomed")
        assert tally.result().sessions.opened == 3
        assert await asyncio.to_thread(reconnect, blue, "1") == 3
        await until(lambda: tally.result().sessions.reconnected == 3, 10, "all 3 reconnected")
    finally:
        stop.set()
        result = await load

    sessions = result.sessions
    assert (sessions.cut, sessions.cut_reasons, sessions.failed_connects) == (0, {}, 0)
    assert (sessions.opened, sessions.reconnected, sessions.landed) == (6, 3, {"blue": 3})
    # Each finished the game it was in when told, and the one it was in at the stop.
    assert sessions.games >= 6
    assert result.requests.sent == 0


async def test_negative_control_a_server_stopped_mid_game_cuts_sessions_and_fails_requests() -> (
    None
):
    port = free_port()
    command = [sys.executable, "-m", "sample_service", "--port", str(port), "--color", "blue"]
    command += ["--version", "1"]
    settings = LoadSettings(
        url=f"http://127.0.0.1:{port}",
        players=2,
        game_seconds=30,  # mid-game whenever the server stops
        requests_per_second=20,
        seconds=25,
    )
    tally, stop = Tally(), asyncio.Event()
    with background(f"test-load-game-{port}", command, port=port) as server:
        load = asyncio.create_task(run(settings, stop, tally))
        try:
            seen = tally.result
            await until(lambda: seen().sessions.opened == 2, 10, "both players welcomed")
            await until(lambda: seen().requests.by_color.get("blue", 0) >= 5, 10, "answers")
            server.terminate()
            await until(lambda: seen().sessions.cut == 2, 10, "both sessions cut")
            await until(lambda: seen().requests.failed >= 3, 10, "requests failing")
            await until(lambda: seen().sessions.failed_connects >= 2, 10, "reconnects failing")
        finally:
            stop.set()
            result = await load

    assert result.sessions.cut_reasons == {"server closed 1001 (going away)": 2}
    assert set(result.sessions.connect_failure_reasons) == {"connection refused"}
    assert set(result.requests.failure_reasons) <= {"connection refused", "connection reset"}
    assert result.requests.sent == result.requests.failed + result.requests.by_color["blue"]
    assert any(s.failed for s in result.timeline)


async def test_players_that_leave_on_the_notice_end_the_run(blue: str) -> None:
    settings = LoadSettings(
        url=blue, players=2, game_seconds=0.5, move_interval=0.1, on_notice="leave", seconds=25
    )
    tally = Tally()
    load = asyncio.create_task(run(settings, tally=tally))
    await until(lambda: tally.result().sessions.opened == 2, 10, "both players welcomed")
    assert await asyncio.to_thread(reconnect, blue, "1") == 2

    result = await asyncio.wait_for(load, 10)  # by itself: nobody left to play

    assert (result.sessions.left, result.sessions.cut, result.sessions.reconnected) == (2, 0, 0)


def test_in_the_background_the_stop_lets_games_end_uncut(blue: str, tmp_path: Path) -> None:
    settings = LoadSettings(
        url=blue, players=2, game_seconds=1, version="1", seconds=60, result=tmp_path / "r.json"
    )
    with load_in_background(settings, name=f"test-load-{tmp_path.name}") as load:
        # Yielded once every player got its welcome.
        count = urllib.request.urlopen(f"{blue}/connections", timeout=5).read()
        assert json.loads(count) == {"connections": 2}

    result = load.result
    assert result is not None
    assert result == LoadResult.read(tmp_path / "r.json")
    assert (result.sessions.opened, result.sessions.cut) == (2, 0)
    assert result.sessions.games >= 2
    assert result.requests.sent == 0
    summary = load.log.read_text().splitlines()[-1]
    assert summary.startswith("load: 0 requests, 0 failed; 2 sessions, 0 cut mid-game,")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8080",
        "http://example.com",
        "http://[::2]:80",
        "http://0.0.0.0:80",
        "http://localhost.example.com:80",
    ],
)
def test_a_url_off_this_machine_is_refused_and_nothing_starts(url: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "local.load", "--url", url, "--seconds", "5"]
    command += ["--requests-per-second", "10", "--result", str(tmp_path / "r.json")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=20)

    assert done.returncode == 2
    assert done.stderr.startswith("python -m local.load: --url: ")
    assert "not this machine's loopback" in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stdout == ""
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1", "http://127.9.8.7", "http://localhost:8080/game", "http://[::1]:9"],
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert LoadSettings(url=url, seconds=1).url == url


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--url", "ftp://127.0.0.1/", "--seconds", "5"], "--url: 'ftp://127.0.0.1/' is not"),
        (["--url", "http://127.0.0.1:1", "--seconds", "0"], "--seconds: Input should be greater"),
        (["--url", "http://127.0.0.1:1", "--seconds", "5", "--players", "-1"], "--players: "),
        (["--url", "http://127.0.0.1:1", "--seconds", "5", "--on-notice", "x"], "--on-notice: "),
    ],
)
def test_bad_options_name_the_option(args: list[str], said: str) -> None:
    with pytest.raises(ValueError, match="^" + said):
        parse_args(args)


def test_settings_make_their_own_command_line(tmp_path: Path) -> None:
    settings = LoadSettings(
        url="http://127.0.0.1:8080",
        seconds=60,
        players=4,
        game_seconds=3,
        requests_per_second=25,
        max_requests=100,
        version="1",
        on_notice="leave",
        result=tmp_path / "r.json",
    )
    assert parse_args(settings.to_args()) == settings
    assert LoadSettings(url="http://127.0.0.1:8080", seconds=5).to_args() == [
        "--url",
        "http://127.0.0.1:8080",
        "--seconds",
        "5.0",
    ]


def test_an_empty_second_of_the_timeline() -> None:
    assert Second(second=0).model_dump() == {"second": 0, "ok": {}, "failed": 0}
