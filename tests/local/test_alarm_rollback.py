"""End to end: a version answering 5xx under load is rolled back by the bake's alarm, which
nobody sets by hand: HAProxy's counters reach moto's CloudWatch and the data plane's alarm
evaluation fires the demo's 5xx alarm, as CloudWatch would behind a real ALB."""

import json
import time
from pathlib import Path

import boto3
import pytest

from local.data_plane.load_balancer import region_traffic
from local.data_plane.prometheus import color_selector, query
from local.load import LoadSettings, load_in_background
from local.processes import free_port, wait_until
from local.stack import REGION
from local.state import read_state
from models.config import load_config
from tests.live_stack import client_output, quiet_stack

pytestmark = pytest.mark.timeout(240)

BAKE = "2m"
"""Far longer than the alarm takes to fire: a deployment ending sooner ended by the alarm."""
REQUESTS_PER_SECOND = 40


def with_bake(config: Path, duration: str, path: Path) -> Path:
    """A copy of the generated deploy.toml whose bake lasts ``duration``."""
    text = config.read_text()
    short = '[environments.prod.bake]\nduration = "3s"\n'
    assert short in text
    path.write_text(text.replace(short, f'[environments.prod.bake]\nduration = "{duration}"\n'))
    return path


def test_a_version_answering_5xx_under_load_is_rolled_back_by_the_bakes_alarm(
    tmp_path: Path,
) -> None:
    with quiet_stack(tmp_path) as stack:
        config = with_bake(stack.config_path, BAKE, tmp_path / "long-bake.toml")
        [alarm] = load_config(config).environment(stack.environment).bake.alarms
        args = stack.deploy_args("2-errors50", "game:2-errors50", "--wait", "--json", config=config)
        settings = LoadSettings(
            url=stack.data_plane.players[REGION],
            requests_per_second=REQUESTS_PER_SECOND,
            seconds=180,
        )
        with load_in_background(settings, name=f"alarm-rollback-{free_port()}"):
            started = time.monotonic()
            done = client_output(stack, *args, timeout=180)
            took = time.monotonic() - started

        assert done.returncode == 1, (done.stdout, done.stderr)
        final = json.loads(done.stdout)
        assert final["state"] == "rolled_back"
        report = final["report"]
        assert (report["phase"], report["error_type"]) == ("baking", "AlarmFired")
        assert alarm in report["reason"]
        assert "HTTPCode_Target_5XX_Count" in report["reason"]  # the evaluation's own words
        assert took < 60, f"the deployment took {took:.0f}s: the bake ran out, no alarm ended it"
        print(f"\nrolled back by {alarm} {took:.1f}s after the deployment started")

        # Green answered the 5xx, as HAProxy and the data plane's Prometheus saw; blue has all
        # the traffic again.
        green = region_traffic(stack.data_plane.api, REGION).colors["green"]
        assert green.responses_5xx > 10
        selector = f'{color_selector(REGION, "green")},code="5xx"'
        promql = f"sum(haproxy_server_http_responses_total{{{selector}}})"
        wait_until(
            lambda: (
                [s.number for s in query(stack.data_plane.prometheus, promql)]
                == [green.responses_5xx]
            ),
            10,
            f"Prometheus counting green's {green.responses_5xx} 5xx",
        )
        state = read_state(stack.environment_config())
        assert state.ssm.active_color == "blue"
        assert (state.weights.blue, state.weights.green) == (100, 0)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        [described] = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        assert described["StateValue"] == "ALARM"
