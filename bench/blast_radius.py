"""The blast radius of a bad version: all at once, judged by the bake's alarm, against a 10 %
canary judged by the metric analysis.

    python -m bench.blast_radius [--rounds 5] [--json] [--players 50] [--rate 400]

On the local environment in one region (game-server tasks per color, HAProxy following moto,
Prometheus scraping HAProxy every second, the ALB's metrics published to moto's CloudWatch and
its 5xx alarm evaluated from them), each round deploys a version that answers 500 to 20 % of
``GET /version`` (``game:N-errors20``) under the same load, both ways:

- **all_at_once**: all traffic at once, then a 60 s bake watching the 5xx alarm (an ALB's:
  more than 10 target 5xx in a minute), read every second; no metric analysis.
- **canary**: 10 % of the traffic, held for a minute, judged every second by the analysis
  (the new color's 5xx share over 5 s from Prometheus, at most 0.05, at least 20 answers).

Both must end rolled back. The figures come from what players and HAProxy saw: ``failed``, the
requests the load generator saw fail; ``haproxy_5xx``, the new color's 5xx answers counted by
HAProxy; ``error_to_back``, from the first 5xx HAProxy counted for the new color to the moment
HAProxy gave the new color no more traffic (weights read every 20 ms). Before each all-at-once
deployment the alarm must be back in OK: an ALB alarm stays in ALARM for its minute after the
errors stop.

Aims: the canary fails at most a tenth of the requests all at once fails, and its traffic is
back on the old color within 5 s of the first error (``aims`` in the summary).
"""

import sys
import threading
import time
from datetime import timedelta
from typing import Any

import boto3

from bench import _harness
from bench._harness import Benchmark, Figures, Measure, Run, Sample
from cli import deployment_kinds
from cli.deployments import ended_status
from local.data_plane.haproxy import backend_name
from local.data_plane.load_balancer import parse_server_name, region_traffic
from local.load import LoadSettings
from local.processes import wait_until
from local.stack import REGION, LocalStack
from local.state import read_state
from local.traffic import measured
from models.analysis import AnalysisConfig
from models.colors import Color, other_color
from models.config import BakeConfig, EnvironmentConfig
from models.deployment import DeploymentStatus, State
from models.traffic import TrafficConfig
from runtime.connection import task_queue

ALL_AT_ONCE, CANARY = "all_at_once", "canary"
GAME_SECONDS = 2.0
ERRORS = 20
"""Percent of ``GET /version`` the bad version answers with a 500."""
WATCH_EVERY = 0.02
"""Seconds between two reads of HAProxy's counters and weights."""
ALARM_CLEAR_TIMEOUT = 150
BY = "bench/blast_radius.py"


def configured(env: EnvironmentConfig, kind: str) -> EnvironmentConfig:
    """The environment as ``kind`` deploys: the alarm-watched bake, or the analysed canary."""
    if kind == ALL_AT_ONCE:
        bake = env.bake.model_copy(
            update={"duration": timedelta(seconds=60), "poll_interval": timedelta(seconds=1)}
        )
        return env.model_copy(update={"bake": bake, "analysis": AnalysisConfig()})
    canary = TrafficConfig(strategy="canary", percent=10, pause=timedelta(minutes=1))
    return env.model_copy(
        update={"traffic": canary, "bake": BakeConfig(duration=timedelta(seconds=3))}
    )


class Watch:
    """HAProxy read every WATCH_EVERY seconds: when the new color first answered a 5xx, and
    when, after that, it had no weight left (its traffic back on the old color)."""

    def __init__(self, stack: LocalStack, new: Color) -> None:
        self._api = stack.data_plane.api
        self._new = new
        self._before = self._errors()
        self.first_error: float | None = None
        self.back: float | None = None
        self.problem = "none"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def errors(self) -> int:
        """The new color's 5xx answers since the watch began."""
        return self._errors() - self._before

    def _errors(self) -> int:
        return region_traffic(self._api, REGION).colors[self._new].responses_5xx

    def _weighted(self) -> bool:
        for server in self._api.servers(backend_name(REGION)):
            parsed = parse_server_name(server.name)
            # A server draining or in maintenance takes nothing new, whatever its weight.
            ready = server.admin_state == "ready" and server.weight > 0
            if parsed and parsed[0] == self._new and ready:
                return True
        return False

    def _run(self) -> None:
        while not self._stop.is_set() and self.back is None:
            now = time.monotonic()
            try:
                if self.first_error is None and self.errors() > 0:
                    self.first_error = now
                elif self.first_error is not None and not self._weighted():
                    self.back = now
            except Exception as err:  # a read that failed: the next one decides
                self.problem = f"{type(err).__name__}: {err}"
            time.sleep(WATCH_EVERY)

    def __str__(self) -> str:
        return f"first 5xx at {self.first_error}, back at {self.back}, last problem: {self.problem}"


async def prepare(run: Run) -> dict[str, Measure]:
    stack, client = run.local()
    env = stack.environment_config()
    versions = iter(range(2, 1000))
    players, rate = int(run.args.players), float(run.args.rate)
    run.setup["load"] = f"{players} players (2 s games), {rate:g} requests/s through HAProxy"
    run.setup["bad version"] = f"answers 500 to {ERRORS}% of GET /version"

    def deployment(kind: str) -> Measure:
        async def measure() -> Sample:
            version = f"{next(versions)}-errors{ERRORS}"
            old = read_state(env).ssm.active_color
            new = other_color(old)
            target = configured(env, kind)
            if target.bake.alarms:
                # A bake refuses to start on an alarm still firing from the last round.
                wait_until(
                    lambda: alarms_ok(target), ALARM_CLEAR_TIMEOUT, "the 5xx alarm back in OK"
                )
            settings = LoadSettings(
                url=stack.data_plane.players[REGION],
                players=players,
                game_seconds=GAME_SECONDS,
                requests_per_second=rate,
                seconds=300,
            )
            request = _harness.request(stack, target, version, BY)
            began = time.perf_counter()
            with (
                measured(stack.data_plane, {REGION: settings}, f"bench-blast-{kind}") as seen,
                Watch(stack, new) as watch,
            ):
                handle = await deployment_kinds.start(client, request, task_queue())
                status = await ended_status(handle, DeploymentStatus)
                problems = rolled_back_problems(status, env, old)
                if not problems:
                    wait_until(
                        lambda: watch.back is not None, 30, f"HAProxy off the new color ({watch})"
                    )
            wall = time.perf_counter() - began
            if problems:
                why = status.report.reason if status.report else "no report"
                raise RuntimeError(f"{kind}, version {version}: {'; '.join(problems)} ({why})")
            report = seen.report
            assert report is not None
            assert watch.first_error is not None and watch.back is not None
            figures: Figures = {
                "wall": wall,
                "failed": report.failed,
                "haproxy_5xx": watch.errors(),
                "error_to_back": watch.back - watch.first_error,
                "requests": report.requests,
                "cut_old": report.cut_on.get(old, 0),
            }
            return Sample(figures, f"{version} → {new}: {status.report and status.report.reason}")

        return measure

    return {kind: deployment(kind) for kind in (ALL_AT_ONCE, CANARY)}


def alarms_ok(env: EnvironmentConfig) -> bool:
    cloudwatch: Any = boto3.client("cloudwatch", region_name=env.region)
    alarms = cloudwatch.describe_alarms(AlarmNames=env.bake.alarms)["MetricAlarms"]
    return all(alarm["StateValue"] == "OK" for alarm in alarms)


def rolled_back_problems(status: DeploymentStatus, env: EnvironmentConfig, old: Color) -> list[str]:
    """What differs from a bad version rolled back: ended rolled_back, all traffic and SSM on
    the old color."""
    problems = []
    if status.state != State.ROLLED_BACK:
        problems.append(f"ended {status.state.value}, not rolled_back")
    state = read_state(env)
    if state.ssm.active_color != old:
        problems.append(f"SSM names {state.ssm.active_color}, not {old}")
    if state.weights.serving() != old:
        problems.append(f"the router sends traffic to {state.weights}, not all to {old}")
    return problems


def summarize(medians: dict[str, Figures]) -> Figures:
    canary, at_once = medians[CANARY], medians[ALL_AT_ONCE]
    return {
        "failed_ratio": canary["failed"] / at_once["failed"] if at_once["failed"] else 0.0,
        "aims_met": float(
            canary["failed"] * 10 <= at_once["failed"] and canary["error_to_back"] <= 5
        ),
    }


BENCHMARK = Benchmark(
    name="blast_radius",
    about="a bad version all at once (alarm) against a 10 % canary (analysis)",
    kinds=(ALL_AT_ONCE, CANARY),
    prepare=prepare,
    game_seconds=GAME_SECONDS,
    labels={
        "wall": "start → rolled back and HAProxy off the new color, s",
        "failed": "requests that failed, as players saw them",
        "haproxy_5xx": "the new color's 5xx answers, as HAProxy counted them",
        "error_to_back": "first 5xx → no traffic on the new color, s",
        "requests": "HTTP requests through HAProxy",
        "cut_old": "sessions cut on the old color",
        "failed_ratio": "failed requests, canary / all at once (median of each)",
        "aims_met": "aims met (canary ≤ 1/10 of the failures, back within 5 s): 1 yes, 0 no",
        "failed_requests": "failed requests",
        "first_error_to_traffic_back_s": "first error → traffic back on the old color, s",
    },
    summarize=summarize,
    spread={"failed_requests": "failed", "first_error_to_traffic_back_s": "error_to_back"},
    options={"players": 50, "rate": 400},
    analysis=True,
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
