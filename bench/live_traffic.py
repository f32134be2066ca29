"""What players see during a deployment, and how fast HAProxy follows the router in moto.

    python -m bench.live_traffic [--rounds 5] [--json] [--players 50] [--rate 400]

On the local environment in one region (``bench/_harness.py``, with its data plane: game-server
tasks per color, HAProxy following moto), each round measures:

- **weights**: the ALB listener's weights written with boto3, as the product's router writes
  them, all to one color and back, 10 times, each at a random moment (0 to 0.2 s after the
  last: HAProxy's follower reads the router every 0.05 s, and changes made right after it
  caught up would all land at the same point of its cycle); the clock starts before
  ``ModifyListener`` and stops when HAProxy's Runtime API shows the new weights (its servers
  read every 5 ms). The figures are that round's median and largest lag.
- **deployment**: the next version deployed to the inactive color (the demo's 3 s bake, 1 s
  polls) while ``--players`` WebSocket players play 2 s games and ``--rate``
  HTTP requests go through HAProxy, from just before the start until the result. Figures: the
  deployment's time, its drain (entered → left, workflow clock), and what the load and
  HAProxy counted over that time: requests and failures, sessions and cuts, retries and
  redispatches. A deployment that players noticed fails the benchmark.
"""

import asyncio
import itertools
import random
import statistics
import sys
import time
from typing import Any, cast

import boto3

from bench import _harness
from bench._harness import Benchmark, Figures, Measure, Run, Sample
from local.data_plane.haproxy import backend_name
from local.data_plane.load_balancer import parse_server_name
from local.load import LoadSettings
from local.stack import REGION, LocalStack
from local.state import read_state
from local.traffic import measured
from models.colors import COLORS, Color, other_color
from models.deployment import DeploymentStatus, Phase

WEIGHTS, DEPLOYMENT = "weights", "deployment"
FLIPS = 10
"""Weight changes per round of ``weights``."""
READ_EVERY = 0.005
"""Seconds between two reads of HAProxy's servers while waiting for a change."""
GAME_SECONDS = 2.0
SEED = 11
BY = "bench/live_traffic.py"


async def prepare(run: Run) -> dict[str, Measure]:
    stack, client = run.local()
    env = stack.environment_config()
    versions = itertools.count(2)
    moments = random.Random(SEED)
    players, rate = int(run.args.players), float(run.args.rate)
    run.setup["load"] = f"{players} players (2 s games), {rate:g} requests/s through HAProxy"

    async def weights() -> Sample:
        lags = []
        for color in _alternate(stack):
            await asyncio.sleep(moments.uniform(0, 0.2))
            lags.append(await asyncio.to_thread(flip, stack, color))
        return Sample(
            {"wall": statistics.median(lags), "lag_max": max(lags)},
            f"{FLIPS} changes",
        )

    async def deployment() -> Sample:
        version = str(next(versions))
        target = other_color(read_state(env).ssm.active_color)
        settings = LoadSettings(
            url=stack.data_plane.players[REGION],
            players=players,
            game_seconds=GAME_SECONDS,
            requests_per_second=rate,
            seconds=300,
        )
        with measured(stack.data_plane, {REGION: settings}, "bench-live-traffic") as seen:
            _, status, figures = await _harness.deploy(
                client, _harness.request(stack, env, version, BY)
            )
        report = seen.report
        assert report is not None
        _harness.check(env, target, version, env.desired_count, f"version {version}")
        noticed = report.problems(min_sessions=players)
        if noticed:
            raise RuntimeError(f"version {version}: players noticed: {'; '.join(noticed)}")
        figures |= {
            "drain": drain_seconds(cast(DeploymentStatus, status)),
            "requests": report.requests,
            "failed": report.failed,
            "sessions": report.sessions,
            "cut": report.cut,
            "retried": report.retried,
        }
        return Sample(figures, f"version {version} → {target}: {report.line()}")

    return {WEIGHTS: weights, DEPLOYMENT: deployment}


def _alternate(stack: LocalStack) -> list[Color]:
    """FLIPS colors to send all traffic to, ending on the active one."""
    active = read_state(stack.environment_config()).ssm.active_color
    return [other_color(active), active] * (FLIPS // 2)


def flip(stack: LocalStack, color: Color) -> float:
    """All of the listener's traffic to ``color`` with boto3; seconds until HAProxy has it."""
    resources = stack.resources
    elbv2: Any = boto3.client("elbv2", region_name=REGION)
    groups = [
        {"TargetGroupArn": resources.target_group_arns[c], "Weight": 100 if c == color else 0}
        for c in COLORS
    ]
    api, backend = stack.data_plane.api, backend_name(REGION)

    def followed() -> bool:
        for server in api.servers(backend):
            parsed = parse_server_name(server.name)
            if (
                parsed
                and server.admin_state == "ready"
                and (server.weight > 0) != (parsed[0] == color)
            ):
                return False
        return True

    began = time.perf_counter()
    elbv2.modify_listener(
        ListenerArn=resources.listener_arn,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
    )
    deadline = began + 10
    while not followed():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"HAProxy did not follow the listener to {color} within 10 s")
        time.sleep(READ_EVERY)
    return time.perf_counter() - began


def drain_seconds(status: DeploymentStatus) -> float:
    """Seconds between entering the drain and the next phase (workflow clock)."""
    entries = status.phases
    for entry, following in itertools.pairwise(entries):
        if entry.phase == Phase.DRAINING:
            return (following.entered_at - entry.entered_at).total_seconds()
    return 0.0


def summarize(medians: dict[str, Figures]) -> Figures:
    return {"lag_median_ms": medians[WEIGHTS]["wall"] * 1000}


BENCHMARK = Benchmark(
    name="live_traffic",
    about="what players see during a deployment; HAProxy following the router",
    kinds=(WEIGHTS, DEPLOYMENT),
    prepare=prepare,
    game_seconds=GAME_SECONDS,
    labels={
        "wall": "weights: median lag of a round, s; deployment: start → result, s",
        "lag_max": "weights: the largest lag of a round, s",
        "drain": "deployment: in the drain, s (real players leaving)",
        "requests": "deployment: HTTP requests through HAProxy",
        "failed": "  … failed",
        "sessions": "deployment: WebSocket sessions opened",
        "cut": "  … cut mid-game",
        "retried": "  … retried or redispatched by HAProxy",
        "lag_median_ms": "router → HAProxy lag, median of the rounds' medians, ms",
    },
    summarize=summarize,
    options={"players": 50, "rate": 400},
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
