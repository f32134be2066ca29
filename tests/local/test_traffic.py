"""The traffic report: what the load generator and HAProxy saw, summed over regions, and the
one line ``make demo`` ends with."""

import subprocess
import sys

from local.data_plane.load_balancer import RegionTraffic, TrafficCounters
from local.load import LoadResult
from local.processes import ROOT
from local.traffic import TrafficReport


def load(sent: int, failed: int, opened: int, cut: int, landed: dict[str, int]) -> LoadResult:
    result = LoadResult(started_at=0, ended_at=1)
    result.requests.sent, result.requests.failed = sent, failed
    result.sessions.opened, result.sessions.cut = opened, cut
    result.sessions.landed, result.sessions.reconnected = landed, sum(landed.values())
    return result


def counters(region: str, **total: int) -> RegionTraffic:
    colors = {"blue": TrafficCounters(), "green": TrafficCounters()}
    return RegionTraffic(region=region, colors=colors, total=TrafficCounters(**total))


def test_regions_add_up_into_the_line() -> None:
    report = TrafficReport.of(
        {"us-west-2": load(6000, 0, 60, 0, {"green": 50}), "us-east-1": load(5000, 2, 55, 1, {})},
        {"us-west-2": counters("us-west-2", wretr=3, wredis=1), "us-east-1": counters("us-east-1")},
    )

    assert report.line() == (
        "traffic: 11000 requests, 2 failed; 115 sessions, 1 cut mid-game; 4 retried or redispatched"
    )
    assert report.landed == {"blue": 0, "green": 50}


def test_problems_name_every_counter_above_zero_and_too_little_traffic() -> None:
    quiet = TrafficReport.of({"r": load(10, 0, 2, 0, {})}, {"r": counters("r")})
    assert quiet.problems() == []
    assert quiet.problems(min_requests=100, min_sessions=5) == [
        "only 10 requests (at least 100 wanted)",
        "only 2 sessions (at least 5 wanted)",
    ]

    # HAProxy hid a dead server from the clients: their side shows nothing, its side does.
    hidden = TrafficReport.of({"r": load(10, 0, 2, 0, {})}, {"r": counters("r", econ=1, eresp=2)})
    assert hidden.problems() == [
        "1 connection errors at HAProxy (econ)",
        "2 responses cut off at HAProxy (eresp)",
    ]


def test_the_data_plane_refuses_a_frontend_it_cannot_place() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "local.data_plane",
            "--config",
            str(ROOT / "deploy.example.toml"),
            "--environment",
            "prod",
            "--frontend",
            "mars-1=8000",
            "--gateway-port",
            "1",
            "--runtime-api-port",
            "2",
            "--stats-port",
            "3",
            "--prometheus-port",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--frontend 'mars-1=8000'" in done.stderr
