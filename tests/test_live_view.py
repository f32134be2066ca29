"""client.py's live view (cli/live.py): redrawn in place on a terminal, plain lines elsewhere.

The renderer runs against a fake terminal (a stream whose ``isatty()`` says True) with a fake
clock, one status at a time; then client.py runs for real in a pseudo-terminal against the dev
server, with an in-process worker over FakeAws, and its output carries the redraw codes.
"""

import asyncio
import fcntl
import io
import os
import pty
import re
import struct
import termios
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli import live, render, render_regions, status_block
from cli.live import CLEAR_BELOW, CLEAR_LINE, UP, LiveView
from local.processes import BIN, ROOT
from models.analysis import MetricTally
from models.deployment import DeploymentStatus, Phase, PhaseEntry, State
from models.multi_region import MultiRegionStatus, RegionProgress
from models.observations import ConnectionCount, HealthObservation
from tests import dev_server
from tests.dev_server import WAIT
from tests.factories import ENVIRONMENT
from tests.workflows.fake_aws import FakeAws

T0 = datetime(2025, 5, 1, 10, 41, 0, tzinfo=UTC)
ESC = "\x1b["


class FakeTerminal(io.StringIO):
    """What client.py writes to, as a terminal: isatty() says True."""

    def isatty(self) -> bool:
        return True

    def take(self) -> str:
        """What was written since the last take."""
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


class Clock:
    """Both clocks the view reads, moved by hand: monotonic seconds and the wall clock."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds - 100)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def status(*phases: tuple[Phase, int], **fields: Any) -> DeploymentStatus:
    """A one-region status that entered ``phases`` (phase, seconds after T0) in order."""
    entries = [PhaseEntry(phase=p, entered_at=T0 + timedelta(seconds=s)) for p, s in phases]
    values: dict[str, Any] = {
        "deployment_id": "deploy-game-prod",
        "service": "game",
        "environment": "prod",
        "region": "us-west-2",
        "version": "2",
        "image": "game:2",
        "phase": entries[-1].phase,
        "phases": entries,
        "active_color_before": "blue",
        "target_color": "green",
    }
    return DeploymentStatus.model_validate(values | fields)


def health(healthy: bool, running: int) -> HealthObservation:
    return HealthObservation(
        healthy=healthy,
        reason="healthy" if healthy else f"running {running} of 2",
        running_count=running,
        desired_count=2,
        pending_count=2 - running,
        rollout_state="COMPLETED" if healthy else "IN_PROGRESS",
        task_definition_arn=None,
        checked_at=T0,
    )


def clients(count: int) -> ConnectionCount:
    return ConnectionCount(version="1", count=count, checked_at=T0)


SETUP = (Phase.SETTING_UP, 0)
DEPLOYING = (Phase.DEPLOYING, 1)
HEALTH = (Phase.WAITING_FOR_HEALTH, 2)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def term() -> FakeTerminal:
    return FakeTerminal()


@pytest.fixture
def view(term: FakeTerminal, clock: Clock) -> LiveView:
    return LiveView(term, clock=clock.monotonic, now=clock.now, width=100, height=40)


def test_each_change_redraws_the_block_in_place_and_nothing_else(
    view: LiveView, term: FakeTerminal, clock: Clock
) -> None:
    clock.advance(5)  # 10:41:05
    first = status(SETUP, DEPLOYING)
    view(first)
    written = term.take()
    # Nothing on the screen yet: no cursor movement; the phase lines, then the block.
    assert UP.format(1) not in written
    assert written == (
        f"{CLEAR_LINE}{render.phase_line(first.phases[0], first)}\n"
        f"{CLEAR_LINE}{render.phase_line(first.phases[1], first)}\n"
        f"{CLEAR_LINE}  now: deploying for 4s\n"
        f"{CLEAR_BELOW}"
    )

    view(first)  # the same status, the same second: nothing to redraw
    assert term.take() == ""

    clock.advance(1)  # the time in phase moves on: back up over the block's one line
    view(first)
    assert term.take() == f"{UP.format(1)}{CLEAR_LINE}  now: deploying for 5s\n{CLEAR_BELOW}"

    clock.advance(1)
    checking = status(SETUP, DEPLOYING, HEALTH, health_checks=3, last_health=health(False, 1))
    view(checking)
    written = term.take()
    assert written.startswith(UP.format(1))
    assert written.count(CLEAR_LINE) == 3  # the new phase line, then two lines of block
    lines = written.removeprefix(UP.format(1)).removesuffix(CLEAR_BELOW).split("\n")
    assert lines == [
        f"{CLEAR_LINE}{render.phase_line(checking.phases[2], checking)}",
        f"{CLEAR_LINE}  now: waiting_for_health for 5s",
        f"{CLEAR_LINE}  health: running 1 of 2 (3 checks)",
        "",
    ]

    view(checking)
    assert term.take() == ""

    clock.advance(1)
    draining = status(
        SETUP,
        DEPLOYING,
        HEALTH,
        (Phase.TESTING, 7),
        (Phase.SWITCHING, 7),
        (Phase.DRAINING, 7),
        health_checks=4,
        last_health=health(True, 2),
        connection_checks=1,
        last_connections=clients(4),
    )
    view(draining)
    written = term.take()
    assert written.startswith(UP.format(2))  # the block had two lines
    assert written.count(CLEAR_LINE) == 3 + 3
    assert " testing " in written and " switching " in written and " draining " in written
    assert "  now: draining for 1s\n" in written
    assert "  health: healthy (4 checks)\n" in written
    assert "  clients left on blue: 4 (1 check)\n" in written

    clock.advance(1)
    done = draining.model_copy(
        update={
            "state": State.SUCCEEDED,
            "phase": Phase.DONE,
            "phases": [*draining.phases, PhaseEntry(phase=Phase.DONE, entered_at=clock.now())],
            "last_connections": clients(0),
        }
    )
    view(done)
    view.close()
    written = term.take()
    # The ended deployment has no block: its three lines are erased under the last phase line.
    assert written.startswith(UP.format(3))
    assert written.endswith(CLEAR_BELOW)
    assert "now:" not in written
    assert " done " in written and "succeeded" in written

    view(done)  # closed: the summary comes next, the view writes nothing more
    view.close()
    assert term.take() == ""


def test_at_most_four_redraws_a_second(clock: Clock, term: FakeTerminal) -> None:
    view = LiveView(term, clock=clock.monotonic, now=clock.now, width=100, height=40)
    view(status(SETUP))
    assert term.take()

    clock.advance(0.1)
    view(status(SETUP, DEPLOYING))  # changed, but 0.1 s after the last redraw: later
    assert term.take() == ""

    clock.advance(0.2)  # over 0.25 s since the last redraw: now, with the phase line kept
    view(status(SETUP, DEPLOYING))
    written = term.take()
    assert written.startswith(UP.format(1))
    assert " deploying " in written


async def test_a_change_held_back_is_drawn_once_the_interval_is_over(term: FakeTerminal) -> None:
    view = LiveView(term, width=100, height=40, min_interval=0.2)
    view(status(SETUP))
    assert term.take()

    view(status(SETUP, DEPLOYING))
    assert term.take() == ""  # too soon: on the event loop's timer

    await asyncio.sleep(0.35)
    assert " deploying " in term.take()


def test_block_lines_are_cut_to_the_terminal_width(clock: Clock, term: FakeTerminal) -> None:
    view = LiveView(term, clock=clock.monotonic, now=clock.now, width=30, height=40)
    long = health(False, 1).model_copy(update={"reason": "running 1 of 2, " + "x" * 80})
    view(status(SETUP, DEPLOYING, HEALTH, health_checks=1, last_health=long))
    written = term.take()
    block = written.split("\n")[-3:-1]
    assert [len(line.removeprefix(CLEAR_LINE)) for line in block] == [29, 29]
    assert block[1].endswith("…")


def test_several_regions_get_a_row_each(clock: Clock, term: FakeTerminal) -> None:
    west = status(SETUP, DEPLOYING, HEALTH, health_checks=2, last_health=health(False, 0))
    east = status(SETUP, region="us-east-1")
    parent = MultiRegionStatus(
        deployment_id="deploy-game-prod",
        service="game",
        environment="prod",
        version="2",
        image="game:2",
        waves=[["us-west-2", "us-east-1"], ["eu-west-1"]],
        regions={
            "us-west-2": RegionProgress(
                region="us-west-2", wave=0, workflow_id="w", started=True, status=west
            ),
            "us-east-1": RegionProgress(
                region="us-east-1", wave=0, workflow_id="e", started=True, status=east
            ),
            "eu-west-1": RegionProgress(region="eu-west-1", wave=1, workflow_id="eu"),
        },
    )
    view = LiveView(term, clock=clock.monotonic, now=clock.now, width=120, height=40)
    clock.advance(10)

    view(parent)

    written = term.take()
    # The phase lines of every region, as the plain output prints them...
    plain = render_regions.new_phase_lines(parent, {})
    assert all(f"{CLEAR_LINE}{line}\n" in written for line in plain)
    # ...then a table: a header and a row per region.
    block = [line.removeprefix(CLEAR_LINE) for line in written.split("\n")[len(plain) : -1]]
    assert [line.split()[:3] for line in block] == [
        ["REGION", "PHASE", "FOR"],
        ["us-west-2", "waiting_for_health", "8s"],
        ["us-east-1", "setting_up", "10s"],
        ["eu-west-1", "not", "started"],
    ]
    assert "running 0 of 2 (2 checks)" in block[1]
    assert "(wave 2)" in block[3]


def test_a_traffic_step_shows_its_split_and_the_analysis(clock: Clock) -> None:
    tally = MetricTally(metric="error-rate", measurements=4, passes=4)
    stepping = status(
        SETUP,
        (Phase.SWITCHING, 30),
        traffic_plan=[10, 100],
        traffic_step=1,
        traffic_split={"blue": 90, "green": 10},
        step_until=T0 + timedelta(minutes=5),
        analysis=[tally],
    )

    block = status_block.one_region(stepping, T0 + timedelta(seconds=40))

    assert block[:2] == [
        "  now: switching for 10s",
        "  traffic: green 10%, blue 90% (step 1 of 2, holding until 10:46:00 UTC)",
    ]
    assert "  analysis: error-rate: 4 measured, 4 passed, 0 failed, 0 inconclusive" in block


@pytest.mark.parametrize(
    ("stream", "term_env"),
    [(io.StringIO(), "xterm"), (FakeTerminal(), "dumb")],
    ids=["not a terminal", "TERM=dumb"],
)
def test_off_a_terminal_the_plain_phase_lines_as_before(
    monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, term_env: str
) -> None:
    monkeypatch.setenv("TERM", term_env)
    statuses = [
        status(SETUP),
        status(SETUP, DEPLOYING),
        status(SETUP, DEPLOYING),
        status(SETUP, DEPLOYING, HEALTH, health_checks=1, last_health=health(False, 0)),
    ]

    def say(line: str) -> None:
        print(line, file=stream)

    with live.progress(say, stream) as show:
        assert not isinstance(show, LiveView)
        for each in statuses:
            show(each)

    # A line per phase, once, as client.py printed them before the live view existed.
    final = statuses[-1]
    expected = "".join(f"{render.phase_line(entry, final)}\n" for entry in final.phases)
    assert stream.getvalue() == expected
    assert ESC not in stream.getvalue()


def test_on_a_terminal_the_view_is_erased_at_the_end_and_kept_on_an_error(
    monkeypatch: pytest.MonkeyPatch, term: FakeTerminal
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    with live.progress(lambda line: None, term) as show:
        assert isinstance(show, LiveView)
        show(status(SETUP))
    written = term.take()
    assert written.endswith(f"{UP.format(1)}{CLEAR_BELOW}")  # the block erased

    with pytest.raises(KeyboardInterrupt), live.progress(lambda line: None, term) as show:
        show(status(SETUP))
        raise KeyboardInterrupt
    written = term.take()
    # Left on the screen, not erased: the last line says where it was.
    assert UP.format(1) not in written
    last = written.removesuffix(CLEAR_BELOW).split("\n")[-2]
    assert last.startswith(f"{CLEAR_LINE}  now: setting_up for "), written


def test_since_skips_the_phases_shown_before(clock: Clock, term: FakeTerminal) -> None:
    accepted = status(SETUP, DEPLOYING, HEALTH)
    view = LiveView(term, accepted, clock=clock.monotonic, now=clock.now, width=100, height=40)
    view(status(SETUP, DEPLOYING, HEALTH, (Phase.COMPENSATING, 5)))
    written = term.take()
    assert " compensating " in written and " deploying " not in written


def test_durations() -> None:
    assert [status_block.duration(s) for s in (-2, 0, 59.9, 60, 185, 3599, 3600, 7322)] == [
        "0s",
        "0s",
        "59s",
        "1m00s",
        "3m05s",
        "59m59s",
        "1h00m",
        "2h02m",
    ]


# --- client.py in a pseudo-terminal ------------------------------------------------------------

QUEUE = f"live-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def aws(temporal: str) -> AsyncIterator[FakeAws]:
    """A worker on this test's event loop over FakeAws."""
    # Healthy at the third check, and two clients that take two more checks to leave: a few
    # seconds of status changes for the view to redraw.
    fake = FakeAws(healthy_after=3, connections=[2, 1, 0])
    async with dev_server.serving(temporal, fake, QUEUE):
        yield fake


async def test_client_py_deploy_wait_redraws_in_a_pseudo_terminal(
    temporal: str, aws: FakeAws, tmp_path: Path
) -> None:
    every_second = {"timeout": "1m", "poll_interval": "1s"}
    config = dev_server.write_config(
        tmp_path / "deploy.toml",
        {"live": ENVIRONMENT | {"health": every_second, "drain": every_second}},
    )
    args = ["deploy", "--config", str(config), "--environment", "live", "--version", "2"]
    args += ["--image", "game:2", "--wait"]

    code, output, stderr = await run_in_pty(temporal, *args)

    assert code == 0, (output, stderr)
    assert stderr == ""
    text = output.replace("\r\n", "\n")
    # Redrawn in place: back up over the block, lines cleared, what is left below erased.
    assert len(re.findall(r"\x1b\[[123]A", text)) >= 3, text
    assert CLEAR_LINE in text and CLEAR_BELOW in text
    assert "  now: waiting_for_health for " in text
    assert re.search(r"  health: running 0 of 2 \(\d checks?\)\n", text), text
    assert re.search(r"  clients left on blue: [21] \(\d checks?\)\n", text), text
    for phase in ("deploying", "waiting_for_health", "testing", "switching", "draining"):
        assert f" {phase} " in text
    # The summary, as without a terminal, after the view was erased.
    summary = text[text.rindex(CLEAR_BELOW) + len(CLEAR_BELOW) :]
    assert summary.startswith("deployment deploy-game-live: SUCCEEDED\n"), summary
    assert ESC not in summary


async def run_in_pty(address: str, *args: str) -> tuple[int, str, str]:
    """client.py ARGS with its stdout on a pseudo-terminal 120 columns wide: (code, what the
    terminal received, stderr)."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env |= {"TEMPORAL_ADDRESS": address, "BLUEGREEN_TASK_QUEUE": QUEUE, "TERM": "xterm"}
    try:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "python"),
            str(ROOT / "client.py"),
            *args,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=terminal,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(terminal)  # the child holds it now: reading ends when the child has exited
    assert process.stderr is not None
    read = asyncio.gather(asyncio.to_thread(read_all, main), process.stderr.read())
    output, stderr = await asyncio.wait_for(read, 3 * WAIT)
    code = await process.wait()
    return code, output.decode(), stderr.decode()


def read_all(fd: int) -> bytes:
    """Everything until the other side of the pseudo-terminal is closed (EIO on Linux)."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
    return b"".join(chunks)
