"""docs/configuration.md's analysis examples, measured on the local data plane for real: the
Prometheus one against Prometheus scraping HAProxy, the CloudWatch one against what the local
ALB publisher puts into moto from HAProxy's counters."""

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from activities.analysis import measure_metric
from local.data_plane.cloudwatch_metrics import AlbMetricsPublisher
from local.data_plane.haproxy import Haproxy, backend_name
from local.data_plane.prometheus import Prometheus, prometheus_server
from local.processes import wait_until
from models.analysis import AnalysisMetric, MeasureInput, Measurement, MetricResult, judge
from tests.activities.aws_resources import REGION, Alb
from tests.local.data_plane import Backend, split
from tests.test_analysis_models import EXAMPLE, documented_examples, load

SEEN_BOUND = 20
"""Seconds for counters to reach Prometheus (a scrape a second) or moto, on a shared machine."""


def documented(name: str, tmp_path: Path) -> AnalysisMetric:
    config = load(tmp_path, EXAMPLE + "".join(documented_examples())).environment("prod")
    [metric] = [m for m in config.analysis.metrics if m.name == name]
    return metric


def servers(haproxy: Haproxy, backends: Callable[[str], Backend]) -> None:
    """A blue and a green server weighing the same, named as the local follower names them."""
    for number, color in enumerate(("blue", "green"), start=1):
        backend = backends(color)
        name = f"{color}-{backend.port}-{number}"
        haproxy.api.add_server(backend_name(REGION), name, backend.address, backend.port, 128)


def nothing() -> None:
    pass


def measured_until(
    arg: MeasureInput, wanted: Callable[[Measurement], bool], send: Callable[[], None] = nothing
) -> tuple[Measurement, MetricResult]:
    """The first measurement ``wanted`` holds for (calling ``send`` before each), judged."""
    seen: list[Measurement] = []

    def holds() -> bool:
        send()
        seen.append(measure_metric(arg))
        return wanted(seen[-1])

    wait_until(holds, SEEN_BOUND, f"{arg.metric.name} measured as wanted")
    return seen[-1], judge(arg.metric, seen[-1])


@pytest.fixture
def prometheus(haproxy: Haproxy) -> Iterator[Prometheus]:
    with prometheus_server(haproxy.metrics_url) as server:
        yield server


def test_the_prometheus_example_on_haproxy(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    servers(haproxy, backends)
    metric = documented("error-rate", tmp_path)
    arg = MeasureInput(region=REGION, metric=metric, color="green", prometheus_url=prometheus.url)

    # Scraped, but no traffic yet: a rate of 0 over a rate of 0 is NaN, no data.
    idle, verdict = measured_until(arg, lambda seen: "NaN" in seen.detail)
    assert (idle.value, verdict.verdict) == (None, "inconclusive")

    # Then 1 answer in 6 a 5xx for each color (round robin over equal weights).
    def traffic() -> None:
        split(haproxy, 20)
        split(haproxy, 4, "/fail")

    seen, verdict = measured_until(
        arg, lambda seen: (seen.requests or 0) >= metric.min_requests, traffic
    )
    assert seen.value is not None and 0.1 < seen.value < 0.25, seen
    assert verdict.verdict == "failed"
    assert re.fullmatch(r"error-rate 0\.\d+ > max 0\.05 \([\d.]+ requests\)", verdict.reason)


def test_the_cloudwatch_example_on_the_published_alb_metrics(
    haproxy: Haproxy, backends: Callable[[str], Backend], alb: Alb, tmp_path: Path
) -> None:
    servers(haproxy, backends)
    publisher = AlbMetricsPublisher(
        REGION, haproxy.api, listener_arn=alb.listener_arn, target_group_arns=alb.target_groups
    )
    metric = documented("target-5xx-rate", tmp_path)
    arg = MeasureInput(
        region=REGION,
        metric=metric,
        color="green",
        target_group_arn=alb.target_groups["green"],
        listener_arn=alb.listener_arn,
    )

    # Nothing published: no request count, inconclusive.
    unpublished = measure_metric(arg)
    assert (unpublished.value, unpublished.requests) == (None, None)
    assert judge(metric, unpublished).reason == (
        "target-5xx-rate: no request count (inconclusive: min_requests 50 needs one)"
    )

    # 60 requests to green, no 5xx: the publisher puts no HTTPCode_Target_5XX_Count, as an ALB.
    split(haproxy, 120)
    publisher.publish()
    quiet, verdict = measured_until(arg, lambda seen: seen.requests == 60)
    assert quiet.value == 0
    assert verdict.reason == "target-5xx-rate 0 <= max 0.05 (60 requests)"

    # 20 more, all 500: 20 of 80.
    split(haproxy, 40, "/fail")
    publisher.publish()
    failing, verdict = measured_until(arg, lambda seen: seen.requests == 80)
    assert failing.value == 0.25
    assert verdict.reason == "target-5xx-rate 0.25 > max 0.05 (80 requests)"
