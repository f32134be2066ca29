"""Traffic steps on the live data plane: at each step HAProxy splits real requests as the router
says, and players never notice the steps; a bad version is caught by the analysis (Prometheus
scraping HAProxy) at its first step and rolled back without a session cut on the old color.

Each step waits for approval here, so the test decides how long a step lasts: long enough for
at least MIN_REQUESTS requests through HAProxy, counted by its own per-server counters.
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from local.data_plane.load_balancer import region_traffic
from local.load import LoadSettings
from local.processes import free_port, wait_until
from local.stack import REGION, LocalStack
from local.state import read_state
from local.traffic import measured
from models.colors import Color, other_color
from models.deployment import DeploymentStatus
from tests.live_stack import quiet_stack

pytestmark = pytest.mark.timeout(240)

STEPS = [10, 50, 100]
MIN_REQUESTS = 1000
POINTS = 4
"""How far HAProxy's split of MIN_REQUESTS may be from the step's weight, in percent points:
about three standard deviations of a 50/50 split over 1,000 requests, HAProxy's own weighted
round robin being much closer than chance."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with quiet_stack(tmp_path_factory.mktemp("progressive"), analysis=True) as s:
        yield s


def with_traffic(stack: LocalStack, path: Path, table: str) -> Path:
    """The stack's deploy.toml with ``table`` as the environment's ``traffic`` table."""
    path.write_text(
        stack.config_path.read_text() + f"\n[environments.{stack.environment}.traffic]\n{table}\n"
    )
    return path


def status_of(stack: LocalStack, deployment_id: str) -> DeploymentStatus:
    async def query() -> DeploymentStatus:
        client = await Client.connect(
            stack.temporal_address, data_converter=pydantic_data_converter
        )
        handle = client.get_workflow_handle(deployment_id)
        status: DeploymentStatus = await handle.query("status", result_type=DeploymentStatus)
        return status

    return asyncio.run(query())


def active_color(stack: LocalStack) -> Color:
    return read_state(stack.environment_config()).ssm.active_color


def test_each_step_splits_real_requests_as_its_weight_says(
    stack: LocalStack, tmp_path: Path
) -> None:
    old = active_color(stack)
    new = other_color(old)
    config = with_traffic(
        stack,
        tmp_path / "deploy.toml",
        'strategy = "steps"\nsteps = [10, 50, 100]\napprove_at = [10, 50]\npause = "1s"',
    )
    deployment_id = f"deploy-game-{stack.environment}"
    args = stack.deploy_args("2", "game:2", "--wait", config=config)
    exit_codes: list[int] = []
    deploying = threading.Thread(target=lambda: exit_codes.append(stack.run_client(*args)))
    settings = LoadSettings(
        url=stack.data_plane.players[REGION],
        players=6,
        game_seconds=1.5,
        requests_per_second=150,
        seconds=180,
    )
    shares: dict[int, float] = {}
    with measured(stack.data_plane, {REGION: settings}, f"steps-{free_port()}") as seen:
        deploying.start()
        for step, percent in enumerate(STEPS[:-1], start=1):
            wait_until(
                lambda step=step: holding(stack, deployment_id, step),  # type: ignore[misc]
                60,
                f"step {step} waiting for approval",
            )
            time.sleep(0.5)  # HAProxy follows the router within 0.2 s (bench/live_traffic.py)
            shares[percent] = share_of(stack, new, MIN_REQUESTS)
            assert (
                stack.run_client(
                    "approve", deployment_id, "--by", "release-engineer", "--comment", "ok"
                )
                == 0
            )
        deploying.join(120)
    assert exit_codes == [0]

    print(f"HAProxy's split at each step, new color's percent: {shares}")
    for percent, share in shares.items():
        assert abs(share - percent) <= POINTS, shares
    report = seen.report
    assert report is not None
    assert report.problems(min_requests=2 * MIN_REQUESTS, min_sessions=6) == [], report.line()
    final = status_of(stack, deployment_id)
    assert [(a.step, a.percent) for a in final.step_approvals] == [(1, 10), (2, 50)]
    assert (final.traffic_step, final.traffic_plan) == (3, STEPS)
    assert active_color(stack) == new


def holding(stack: LocalStack, deployment_id: str, step: int) -> bool:
    try:
        status = status_of(stack, deployment_id)
    except Exception:  # not started yet
        return False
    return status.traffic_step == step and status.awaiting_step_approval


def share_of(stack: LocalStack, color: Color, requests: int) -> float:
    """``color``'s share, in percent, of the next ``requests`` HTTP requests HAProxy forwards."""
    api = stack.data_plane.api
    before = region_traffic(api, REGION).colors

    def counted() -> int:
        now = region_traffic(api, REGION).colors
        return sum(now[c].requests - before[c].requests for c in now)

    wait_until(lambda: counted() >= requests, 60, f"{requests} requests through HAProxy")
    after = region_traffic(api, REGION).colors
    got = {c: after[c].requests - before[c].requests for c in after}
    return 100 * got[color] / sum(got.values())


def test_a_bad_canary_is_rolled_back_at_its_first_step_without_cutting_the_old_color(
    stack: LocalStack, tmp_path: Path
) -> None:
    old = active_color(stack)
    new = other_color(old)
    config = with_traffic(
        stack, tmp_path / "deploy.toml", 'strategy = "canary"\npercent = 10\npause = "1m"'
    )
    deployment_id = f"deploy-game-{stack.environment}"
    args = stack.deploy_args("3-errors20", "game:3-errors20", "--wait", config=config)
    settings = LoadSettings(
        url=stack.data_plane.players[REGION],
        players=12,
        game_seconds=1.5,
        requests_per_second=150,
        seconds=120,
    )
    with measured(stack.data_plane, {REGION: settings}, f"bad-canary-{free_port()}") as seen:
        code = stack.run_client(*args)
        time.sleep(2)  # traffic after the rollback: all of it on the old color again

    assert code != 0
    final = status_of(stack, deployment_id)
    assert final.report is not None
    assert final.report.error_type == "AnalysisFailed", final.report
    assert "error-rate" in final.report.reason and "> max 0.05" in final.report.reason
    assert final.report.phase.value == "switching"
    assert final.step_approvals == [] and final.traffic_plan == [10, 100]
    assert final.report.compensation[0] == f"traffic back to {old}"
    assert active_color(stack) == old  # SSM never named the canary
    report = seen.report
    assert report is not None
    print(f"bad canary: {report.line()}; cut on {report.cut_on}")
    assert report.cut_on[old] == 0, report.cut_on
    assert 0 < report.failed < report.requests * 0.1 / 2, report.line()
    # Only the canary's own 500s: nothing failed on the way to the old color.
    assert set(seen.loads[REGION].requests.failure_reasons) == {"HTTP 500"}
    assert report.connection_errors == report.response_errors == report.retried == 0
    last_seconds = seen.loads[REGION].timeline[-1:]
    assert all(set(second.ok) <= {old} and not second.failed for second in last_seconds)
    assert new not in {c for s in last_seconds for c in s.ok}
