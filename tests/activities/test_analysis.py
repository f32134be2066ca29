"""measure_metric against the real thing: moto's CloudWatch over HTTP, and Debian's Prometheus
scraping a small exposition page this module serves.

Each CloudWatch test writes its datapoints under dimensions of its own (a target group of its
own): the session's moto server keeps every datapoint for good.
"""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.analysis import QUERY_ERROR, measure_metric
from activities.aws import aws_client
from local.data_plane.prometheus import Prometheus, prometheus_server, query
from local.processes import free_port, wait_until
from models.analysis import AnalysisMetric, MeasureInput, Measurement, judge
from models.colors import Color
from tests.activities.aws_resources import REGION, unique

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

LISTENER = (
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/game/50dc6c495c0c9188"
    "/f2f7dc8efc522ab2"
)
LOAD_BALANCER = "app/game/50dc6c495c0c9188"
TARGET_GROUP_DIMENSIONS = {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"}

# --- CloudWatch on moto -------------------------------------------------------------------------


@pytest.fixture
def cloudwatch(aws: dict[str, str]) -> "CloudWatchClient":
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def target_group() -> str:
    """A target group ARN no other test writes metrics for."""
    return (
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/"
        f"{unique('green')}/73e2d6bc24d8a067"
    )


@pytest.fixture
def metric_data_requests(aws: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every GetMetricData request the activity's client sends."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    events = aws_client("cloudwatch", REGION).meta.events
    event = "provide-client-params.cloudwatch.GetMetricData"
    events.register(event, record)
    try:
        yield seen
    finally:
        events.unregister(event, record)


def put(
    cloudwatch: "CloudWatchClient",
    name: str,
    dimensions: dict[str, str],
    *values: float,
    ago: float = 10,
    namespace: str = "AWS/ApplicationELB",
) -> None:
    """Datapoints of ``name``, one second apart, the last ``ago`` seconds before now."""
    now = datetime.now(UTC)
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Value": value,
                "Timestamp": now - timedelta(seconds=ago + len(values) - 1 - n),
            }
            for n, value in enumerate(values)
        ],
    )


def alb_dimensions(target_group: str) -> dict[str, str]:
    """The dimensions an ALB gives a target group's metrics (and the local publisher too)."""
    return {"TargetGroup": target_group.split(":", 5)[5], "LoadBalancer": LOAD_BALANCER}


def cloudwatch_metric(**fields: Any) -> AnalysisMetric:
    query = {"dimensions": TARGET_GROUP_DIMENSIONS} | fields.pop("query", {})
    return AnalysisMetric.model_validate(
        {"name": "target-5xx", "provider": "cloudwatch", "max": 0.05, "query": query} | fields
    )


def measure(
    env: ActivityEnvironment,
    metric: AnalysisMetric,
    target_group: str | None = None,
    color: Color = "green",
    prometheus_url: str | None = None,
) -> Measurement:
    arg = MeasureInput(
        region=REGION,
        metric=metric,
        color=color,
        target_group_arn=target_group,
        prometheus_url=prometheus_url,
        listener_arn=LISTENER,
    )
    seen: Measurement = env.run(measure_metric, arg)
    return seen


def reading(seen: Measurement) -> tuple[Any, ...]:
    """The value and the request count, for comparing with pytest.approx."""
    return seen.value, seen.requests


ERROR_RATE = {"metric": "HTTPCode_Target_5XX_Count", "divide_by": "RequestCount"}


def test_a_target_group_s_5xx_rate_and_its_requests(
    env: ActivityEnvironment,
    cloudwatch: "CloudWatchClient",
    target_group: str,
    metric_data_requests: list[dict[str, Any]],
) -> None:
    dimensions = alb_dimensions(target_group)
    put(cloudwatch, "RequestCount", dimensions, 60, 40)
    put(cloudwatch, "HTTPCode_Target_5XX_Count", dimensions, 12, 9)
    # Another color's, and the load balancer's own (no TargetGroup): not this target group's.
    put(cloudwatch, "HTTPCode_Target_5XX_Count", alb_dimensions(target_group + "0"), 500)
    put(cloudwatch, "HTTPCode_Target_5XX_Count", {"LoadBalancer": LOAD_BALANCER}, 500)
    metric = cloudwatch_metric(query=ERROR_RATE, min_requests=50)

    seen = measure(env, metric, target_group)

    assert seen.metric == "target-5xx"
    assert reading(seen) == (pytest.approx(0.21), 100)
    assert seen.detail == "Sum of HTTPCode_Target_5XX_Count over 1m / RequestCount"
    result = judge(metric, seen)
    assert result.verdict == "failed"
    assert result.reason == "target-5xx 0.21 > max 0.05 (100 requests)"
    # One request; RequestCount asked once although it is both divide_by and the request count.
    [request] = metric_data_requests
    stats = [
        (q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"])
        for q in request["MetricDataQueries"]
    ]
    assert stats == [("HTTPCode_Target_5XX_Count", "Sum"), ("RequestCount", "Sum")]
    first = request["MetricDataQueries"][0]["MetricStat"]
    assert first["Period"] == 60
    assert first["Metric"]["Dimensions"] == [
        {"Name": "TargetGroup", "Value": dimensions["TargetGroup"]},
        {"Name": "LoadBalancer", "Value": LOAD_BALANCER},
    ]
    assert request["EndTime"] - request["StartTime"] == timedelta(minutes=1)
    assert request["EndTime"] == seen.measured_at


def test_only_the_window_counts(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient", target_group: str
) -> None:
    dimensions = alb_dimensions(target_group)
    put(cloudwatch, "RequestCount", dimensions, 50, ago=600)
    put(cloudwatch, "HTTPCode_Target_5XX_Count", dimensions, 50, ago=600)
    put(cloudwatch, "RequestCount", dimensions, 40, ago=40)
    put(cloudwatch, "HTTPCode_Target_5XX_Count", dimensions, 20, ago=40)
    put(cloudwatch, "RequestCount", dimensions, 100, ago=5)
    put(cloudwatch, "HTTPCode_Target_5XX_Count", dimensions, 1, ago=5)

    short = measure(env, cloudwatch_metric(query=ERROR_RATE, window="30s"), target_group)
    minute = measure(env, cloudwatch_metric(query=ERROR_RATE, window="1m"), target_group)

    assert reading(short) == (pytest.approx(0.01), 100)
    assert reading(minute) == (pytest.approx(21 / 140), 140)


def test_no_datapoints_is_no_data_never_zero(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient", target_group: str
) -> None:
    metric = cloudwatch_metric(query=ERROR_RATE)

    seen = measure(env, metric, target_group)

    assert (seen.value, seen.requests) == (None, None)
    assert seen.detail == "no datapoint of HTTPCode_Target_5XX_Count in 1m"
    result = judge(metric, seen)
    assert result.verdict == "inconclusive"
    assert result.reason == (
        "target-5xx: no data: no datapoint of HTTPCode_Target_5XX_Count in 1m"
        " (inconclusive: an empty result is never a pass)"
    )


def test_no_5xx_datapoint_is_zero_only_with_missing_is_zero_and_requests(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient", target_group: str
) -> None:
    # An ALB publishes no HTTPCode_Target_5XX_Count for a minute without any.
    put(cloudwatch, "RequestCount", alb_dimensions(target_group), 80)

    plain = measure(env, cloudwatch_metric(query=ERROR_RATE), target_group)
    zero = measure(
        env, cloudwatch_metric(query=ERROR_RATE | {"missing_is_zero": True}), target_group
    )
    elsewhere = measure(
        env,
        cloudwatch_metric(query=ERROR_RATE | {"missing_is_zero": True}),
        target_group + "0",  # no requests either: still no data
    )

    assert (plain.value, plain.requests) == (None, 80)
    assert (zero.value, zero.requests) == (0, 80)
    assert zero.detail == (
        "no datapoint of HTTPCode_Target_5XX_Count in 1m: 0 (missing_is_zero) / RequestCount"
    )
    assert judge(cloudwatch_metric(query=ERROR_RATE), zero).reason == (
        "target-5xx 0 <= max 0.05 (80 requests)"
    )
    assert (elsewhere.value, elsewhere.requests) == (None, None)


def test_dividing_by_zero_requests_is_no_data(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient", target_group: str
) -> None:
    dimensions = alb_dimensions(target_group)
    put(cloudwatch, "RequestCount", dimensions, 0)
    put(cloudwatch, "HTTPCode_Target_5XX_Count", dimensions, 0)

    seen = measure(env, cloudwatch_metric(query=ERROR_RATE), target_group)

    assert (seen.value, seen.requests) == (None, 0)
    assert seen.detail == "RequestCount is 0 in 1m: nothing to divide by"


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("Average", 0.2), ("Maximum", 0.35), ("Minimum", 0.05), ("Sum", 0.8), ("SampleCount", 4)],
)
def test_each_statistic_over_the_window(
    stat: str,
    expected: float,
    env: ActivityEnvironment,
    cloudwatch: "CloudWatchClient",
    target_group: str,
) -> None:
    dimensions = alb_dimensions(target_group)
    put(cloudwatch, "TargetResponseTime", dimensions, 0.2, 0.35, 0.05, 0.2)
    put(cloudwatch, "RequestCount", dimensions, 30, 30)
    metric = cloudwatch_metric(
        name="latency",
        max=0.25,
        query={"metric": "TargetResponseTime", "stat": stat, "requests": "RequestCount"},
        min_requests=50,
    )

    seen = measure(env, metric, target_group)

    assert reading(seen) == (pytest.approx(expected), 60)
    assert seen.detail == f"{stat} of TargetResponseTime over 1m"


def test_a_ratio_of_averages_and_placeholders_in_a_namespace_of_its_own(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient"
) -> None:
    namespace = unique("Game")
    for color, (sessions, players) in {"green": ((4, 6), (40, 80)), "blue": ((1,), (1,))}.items():
        dimensions = {"Color": color, "Region": REGION}
        put(cloudwatch, "Sessions", dimensions, *sessions, namespace=namespace)
        put(cloudwatch, "Players", dimensions, *players, namespace=namespace)
    metric = AnalysisMetric.model_validate(
        {
            "name": "sessions-per-player",
            "provider": "cloudwatch",
            "min": 0.1,
            "window": "5m",
            "query": {
                "namespace": namespace,
                "metric": "Sessions",
                "stat": "Average",
                "divide_by": "Players",
                "dimensions": {"Color": "{color}", "Region": "{region}"},
            },
        }
    )

    seen = measure(env, metric)  # no target group needed: the metric does not use one

    assert seen.value == pytest.approx(5 / 60)
    assert seen.requests == 120  # divide_by is the request count when requests is not given
    assert judge(metric, seen).reason == "sessions-per-player 0.08333 < min 0.1 (120 requests)"


def test_a_placeholder_without_a_value_is_not_retried(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient"
) -> None:
    with pytest.raises(ApplicationError) as caught:
        measure(env, cloudwatch_metric(query=ERROR_RATE), target_group=None)

    assert caught.value.type == QUERY_ERROR
    assert caught.value.non_retryable
    assert caught.value.message == (
        "target-5xx: {target_group} has no value here (the color has no target_group_arn)"
    )


# --- Prometheus ----------------------------------------------------------------------------------

EXPOSITION = """\
# TYPE game_requests_total counter
game_requests_total{color="blue"} 1000
game_requests_total{color="green"} 412
# TYPE game_errors_total counter
game_errors_total{color="blue"} 3
game_errors_total{color="green"} 87
# TYPE game_idle gauge
game_idle{color="green"} 0
"""
SCRAPED_BOUND = 20
"""Seconds for Prometheus to start and scrape the page once, on a shared machine."""


class Exposition(BaseHTTPRequestHandler):
    """``/metrics``: EXPOSITION for Prometheus to scrape; ``/down/…``: a 503, as a Prometheus
    behind a proxy that lost it."""

    def do_GET(self) -> None:
        status, body, kind = 404, b"not found", "text/plain"
        if self.path == "/metrics":
            status, body, kind = 200, EXPOSITION.encode(), "text/plain; version=0.0.4"
        elif self.path.startswith("/down/"):
            status, body = 503, b"upstream connect error"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def exposition() -> Iterator[str]:
    """The page's server: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Exposition)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def prometheus(exposition: str) -> Iterator[Prometheus]:
    """Prometheus scraping the page every second, once it has scraped it."""
    with prometheus_server(f"{exposition}/metrics") as server:
        wait_until(
            lambda: bool(query(server.url, 'game_requests_total{color="green"}')),
            SCRAPED_BOUND,
            "Prometheus scraping the exposition page",
        )
        yield server


def promql_metric(query: str, **fields: Any) -> AnalysisMetric:
    return AnalysisMetric.model_validate(
        {"name": "error-rate", "provider": "prometheus", "max": 0.05, "query": query} | fields
    )


def error_(env: ActivityEnvironment, metric: AnalysisMetric, url: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        measure(env, metric, prometheus_url=url)
    return caught.value


GREEN_ERRORS = 'sum(game_errors_total{color="{color}"})'
GREEN_REQUESTS = 'sum(game_requests_total{color="{color}"})'


def test_a_ratio_and_its_request_count(env: ActivityEnvironment, prometheus: Prometheus) -> None:
    metric = promql_metric(
        f"{GREEN_ERRORS} / {GREEN_REQUESTS}", requests_query=GREEN_REQUESTS, min_requests=100
    )

    seen = measure(env, metric, prometheus_url=prometheus.url)
    blue = measure(env, metric, color="blue", prometheus_url=prometheus.url)

    assert (*reading(seen), seen.detail) == (pytest.approx(87 / 412), 412, "1 series")
    assert judge(metric, seen).reason == "error-rate 0.2112 > max 0.05 (412 requests)"
    assert reading(blue) == (pytest.approx(0.003), 1000)
    assert judge(metric, blue).reason == "error-rate 0.003 <= max 0.05 (1000 requests)"


def test_window_is_a_duration_prometheus_reads(
    env: ActivityEnvironment, prometheus: Prometheus
) -> None:
    metric = promql_metric(
        'max_over_time(game_requests_total{color="{color}"}[{window}])', window="1m30s"
    )

    seen = measure(env, metric, prometheus_url=prometheus.url)

    assert (seen.value, seen.requests) == (412, None)


def test_a_scalar(env: ActivityEnvironment, prometheus: Prometheus) -> None:
    seen = measure(
        env, promql_metric("scalar(sum(game_requests_total))"), prometheus_url=prometheus.url
    )
    assert (seen.value, seen.detail) == (1412, "a scalar")


@pytest.mark.parametrize(
    ("promql", "detail"),
    [
        ('game_requests_total{color="purple"}', "the query returned no series"),
        ('sum(game_idle{color="{color}"}) / sum(game_idle{color="{color}"})', "NaN"),
        ("0 / 0", "NaN"),
        (f'{GREEN_ERRORS} / sum(game_idle{{color="{{color}}"}})', "+Inf"),
    ],
    ids=["empty", "NaN vector", "NaN scalar", "+Inf"],
)
def test_no_series_nan_and_inf_are_no_data(
    promql: str, detail: str, env: ActivityEnvironment, prometheus: Prometheus
) -> None:
    metric = promql_metric(promql)

    seen = measure(env, metric, prometheus_url=prometheus.url)

    assert seen.value is None
    assert detail in seen.detail
    assert judge(metric, seen).verdict == "inconclusive"


def test_no_request_count_is_inconclusive(env: ActivityEnvironment, prometheus: Prometheus) -> None:
    metric = promql_metric(
        f"{GREEN_ERRORS} / {GREEN_REQUESTS}",
        requests_query='sum(game_requests_total{color="purple"})',
        min_requests=10,
    )

    seen = measure(env, metric, prometheus_url=prometheus.url)

    assert reading(seen) == (pytest.approx(87 / 412), None)
    assert seen.detail == "1 series; requests_query: the query returned no series"
    assert judge(metric, seen).reason == (
        "error-rate: no request count (inconclusive: min_requests 10 needs one)"
    )


@pytest.mark.parametrize(
    ("promql", "said"),
    [
        ("sum(rate(game_requests_total[1m])", "unclosed left parenthesis"),
        ("game_requests_total / on() game_errors_total", "many-to-many matching not allowed"),
        ("game_requests_total", "returned 2 series"),
        ('game_requests_total{color="green"}[1m]', "returned a matrix"),
    ],
    ids=["bad PromQL", "cannot be evaluated", "several series", "a range vector"],
)
def test_a_query_that_cannot_work_is_not_retried(
    promql: str, said: str, env: ActivityEnvironment, prometheus: Prometheus
) -> None:
    error = error_(env, promql_metric(promql), prometheus.url)

    assert (error.type, error.non_retryable) == (QUERY_ERROR, True)
    assert said in error.message
    assert promql in error.message


def test_several_series_are_named(env: ActivityEnvironment, prometheus: Prometheus) -> None:
    error = error_(env, promql_metric("game_requests_total"), prometheus.url)
    assert 'color="blue"' in error.message and 'color="green"' in error.message
    assert "aggregate it" in error.message


def test_no_prometheus_or_a_5xx_is_retried(env: ActivityEnvironment, exposition: str) -> None:
    unreachable = error_(env, promql_metric("up"), f"http://127.0.0.1:{free_port()}")
    down = error_(env, promql_metric("up"), f"{exposition}/down")

    assert (unreachable.type, unreachable.non_retryable) == ("HttpConnectionError", False)
    assert (down.type, down.non_retryable) == ("HTTP503", False)
    assert "upstream connect error" in down.message
