"""Zero downtime, measured: deployments under real load through HAProxy, and the negative
controls that show the measurement can fail.

The load is the local load generator's WebSocket players and HTTP requests through HAProxy's
frontend; what they saw is checked beside HAProxy's own counters (``local/traffic.py``).
"""

import os
import signal
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from local.load import LoadSettings
from local.processes import free_port, wait_until
from local.stack import REGION, LocalStack
from local.state import read_state
from local.traffic import Measured, measured
from models.colors import Color, other_color
from tests.live_stack import quiet_stack

pytestmark = pytest.mark.timeout(240)

PLAYERS = 12
GAME_SECONDS = 1.5
REQUESTS_PER_SECOND = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local environment, without players of its own: each test brings its load."""
    with quiet_stack(tmp_path_factory.mktemp("live-traffic")) as s:
        yield s


@contextmanager
def under_load(stack: LocalStack) -> Iterator[Measured]:
    """Players and requests through HAProxy for the block; then what they and HAProxy saw."""
    settings = LoadSettings(
        url=stack.data_plane.players[REGION],
        players=PLAYERS,
        game_seconds=GAME_SECONDS,
        requests_per_second=REQUESTS_PER_SECOND,
        seconds=180,
    )
    with measured(stack.data_plane, {REGION: settings}, f"live-traffic-{free_port()}") as seen:
        yield seen


def active_color(stack: LocalStack) -> Color:
    return read_state(stack.environment_config()).ssm.active_color


def deploy(stack: LocalStack, version: str, config: Path | None = None) -> None:
    assert (
        stack.run_client(*stack.deploy_args(version, f"game:{version}", "--wait", config=config))
        == 0
    )


def test_a_deployment_under_load_is_invisible_to_players(stack: LocalStack) -> None:
    old = active_color(stack)
    new = other_color(old)

    with under_load(stack) as seen:
        deploy(stack, "2")

    report = seen.report
    assert report is not None
    assert report.problems(min_requests=300, min_sessions=PLAYERS) == [], report.line()
    # Every player was on the old color, was told to reconnect, and is on the new one now.
    assert report.landed[new] >= PLAYERS
    assert set(seen.loads[REGION].requests.by_color) == {old, new}
    last_seconds = seen.loads[REGION].timeline[-3:]
    assert all(set(second.ok) <= {new} for second in last_seconds), last_seconds


def test_shutting_the_old_color_down_without_a_drain_cuts_sessions(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Negative control: a deployment whose config has no [connections] section switches and
    scales the old color to zero with its players still mid-game."""
    undrained = tmp_path / "deploy.toml"
    undrained.write_text(without_table(stack.config_path.read_text(), "connections"))
    assert (
        tomllib.loads(undrained.read_text())["environments"][stack.environment].get("connections")
        is None
    )

    old = targets(stack, active_color(stack))
    with under_load(stack) as seen:
        deploy(stack, "3", undrained)
        # ECS's stand-in stops the tasks a moment after the deployment ends: the load must
        # still run then, or a fast deployment leaves nobody to cut.
        wait_until(
            lambda: not any(task_running(*target) for target in old),
            30,
            "the old color's tasks stopped",
        )

    report = seen.report
    assert report is not None
    assert report.cut > 0, report.line()
    assert "sessions cut mid-game" in "; ".join(report.problems())
    assert any("1001" in reason for reason in seen.loads[REGION].sessions.cut_reasons)


def test_a_task_killed_under_load_shows_up_in_the_counters(stack: LocalStack) -> None:
    """Negative control: SIGKILL one of the active color's tasks while players play and
    requests flow; ECS's stand-in replaces it."""
    color = active_color(stack)

    with under_load(stack) as seen:
        address, port = sorted(targets(stack, color))[0]
        os.kill(task_pid(address, port), signal.SIGKILL)
        wait_until(
            lambda: (
                len(now := targets(stack, color)) == stack.resources.desired_count
                and (address, port) not in now
            ),
            30,
            "the killed task replaced",
        )

    report = seen.report
    assert report is not None
    noticed = report.failed + report.cut + report.retried + report.connection_errors
    assert noticed + report.response_errors > 0, report.line()
    assert report.problems() != []


def targets(stack: LocalStack, color: Color) -> set[tuple[str, int]]:
    """The (address, port) of every task registered in ``color``'s target group."""
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arn = stack.resources.target_group_arns[color]
    described = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]) for d in described}


def task_running(address: str, port: int) -> bool:
    try:
        task_pid(address, port)
    except LookupError:
        return False
    return True


def task_pid(address: str, port: int) -> int:
    """The process of the game-server task listening on address:port (from /proc)."""
    wanted = f"--host\0{address}\0--port\0{port}\0"
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and wanted in (entry / "cmdline").read_text():
                return int(entry.name)
        except OSError:
            continue  # gone meanwhile
    raise LookupError(f"no game-server task on {address}:{port}")


def without_table(text: str, name: str) -> str:
    """deploy.toml's text without the environment's ``[environments.<env>.<name>]`` table."""
    lines, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.rstrip().endswith(f".{name}]")
        if not skipping:
            lines.append(line)
    return "".join(lines)
