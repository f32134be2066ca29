"""Metric analysis without I/O: deploy.toml's ``analysis`` tables (each mistake one line naming
the key), the placeholders, the verdict on one measurement, and the tally against the limits."""

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from local.processes import ROOT
from models.analysis import (
    AnalysisConfig,
    AnalysisMetric,
    CloudWatchQuery,
    MeasureInput,
    Measurement,
    MetricResult,
    MetricTally,
    check_placeholders,
    expand,
    judge,
    load_balancer_dimension,
    placeholders_in,
    target_group_dimension,
)
from models.config import DeployConfig, load_config
from models.errors import ConfigError
from tests.factories import ENVIRONMENT, environment

EXAMPLE = (ROOT / "deploy.example.toml").read_text()
TARGET_GROUP = (
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/game-green/fedcba9876543210"
)
LISTENER = "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/game-prod/0123456789abcdef/0123456789abcdef"
AT = datetime(2026, 5, 1, 10, 41, 7, tzinfo=UTC)

PROMETHEUS = """
[environments.prod.analysis]
prometheus_url = "http://prometheus.internal:9090/"

[[environments.prod.analysis.metrics]]
name = "error-rate"
provider = "prometheus"
query = 'sum(rate(http_responses_total{color="{color}",code="5xx"}[{window}])) / sum(rate(http_responses_total{color="{color}"}[{window}]))'
requests_query = 'sum(increase(http_responses_total{color="{color}"}[{window}]))'
max = 0.05
window = "30s"
interval = "10s"
min_requests = 50
"""

CLOUDWATCH = """
[[environments.prod.analysis.metrics]]
name = "target-5xx"
provider = "cloudwatch"
max = 0.01
window = "2m"
failure_limit = 1
inconclusive_limit = 2
min_requests = 100
query = { metric = "HTTPCode_Target_5XX_Count", divide_by = "RequestCount", missing_is_zero = true, dimensions = { TargetGroup = "{target_group}", LoadBalancer = "{load_balancer}" } }
"""


def metric_toml(*lines: str, provider: str = "cloudwatch", name: str = "target-5xx") -> str:
    """One metric's table with ``lines`` (a threshold and a query unless they say otherwise)."""
    text = "\n".join(lines)
    if not re.search(r"^query =", text, re.MULTILINE):
        text += "\n" + ('query = "up"' if provider == "prometheus" else 'query = { metric = "X" }')
    if "max =" not in text and "min =" not in text and "# no threshold" not in text:
        text += "\nmax = 1"
    return (
        f'\n[[environments.prod.analysis.metrics]]\nname = "{name}"\nprovider = "{provider}"\n'
        f"{text}\n"
    )


WITH_URL = '\n[environments.prod.analysis]\nprometheus_url = "http://prometheus.internal:9090"\n'


def load(tmp_path: Path, text: str) -> DeployConfig:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return load_config(path)


def test_both_providers_load_from_the_file(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE + PROMETHEUS + CLOUDWATCH).environment("prod")

    analysis = config.analysis
    assert analysis.prometheus_url == "http://prometheus.internal:9090"
    prometheus, cloudwatch = analysis.metrics
    assert (prometheus.name, prometheus.max, prometheus.min) == ("error-rate", 0.05, None)
    assert (prometheus.window, prometheus.interval) == (
        timedelta(seconds=30),
        timedelta(seconds=10),
    )
    assert prometheus.placeholders() == {"color", "window"}
    assert cloudwatch.query == CloudWatchQuery(
        metric="HTTPCode_Target_5XX_Count",
        divide_by="RequestCount",
        missing_is_zero=True,
        dimensions={"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"},
    )
    assert isinstance(cloudwatch.query, CloudWatchQuery)
    assert (cloudwatch.query.namespace, cloudwatch.query.stat) == ("AWS/ApplicationELB", "Sum")
    assert cloudwatch.query.request_metric == "RequestCount"
    assert (cloudwatch.failure_limit, cloudwatch.inconclusive_limit) == (1, 2)


def documented_examples() -> list[str]:
    """The TOML examples of docs/configuration.md's analysis section, in order."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    section = page.split("### `[environments.<name>.analysis]`", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^```toml\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def test_the_documented_examples_are_valid(tmp_path: Path) -> None:
    examples = documented_examples()

    config = load(tmp_path, EXAMPLE + "".join(examples)).environment("prod")

    assert len(examples) == 3
    assert [m.name for m in config.analysis.metrics] == ["error-rate", "target-5xx-rate", "latency"]
    assert [m.provider for m in config.analysis.metrics] == [
        "prometheus",
        "cloudwatch",
        "cloudwatch",
    ]
    assert config.analysis.prometheus_url == "http://127.0.0.1:9090"


def test_the_defaults() -> None:
    assert environment().analysis == AnalysisConfig(prometheus_url=None, metrics=[])
    metric = AnalysisMetric(name="e", provider="prometheus", query="up", min=1)
    assert (metric.window, metric.interval) == (timedelta(minutes=1), timedelta(minutes=1))
    assert (metric.failure_limit, metric.inconclusive_limit, metric.min_requests) == (0, 0, 0)


CONFIG_CASES = {
    "no threshold": (
        metric_toml("# no threshold"),
        "environments.prod.analysis.metrics.0: target-5xx: give a threshold, max or min",
    ),
    "both thresholds": (
        metric_toml("max = 0.05", "min = 0"),
        "environments.prod.analysis.metrics.0: target-5xx: give one threshold, max or min,"
        " not both",
    ),
    "a threshold that is not a number": (
        metric_toml("max = nan"),
        "environments.prod.analysis.metrics.0.max: Input should be a finite number",
    ),
    "prometheus without prometheus_url": (
        metric_toml(provider="prometheus", name="error-rate"),
        "environments.prod.analysis: prometheus_url is required: metric error-rate uses prometheus",
    ),
    "prometheus_url that is not http": (
        '\n[environments.prod.analysis]\nprometheus_url = "prometheus:9090"\n',
        "environments.prod.analysis.prometheus_url: 'prometheus:9090' must be an http:// or"
        " https:// URL",
    ),
    "unknown placeholder in PromQL": (
        WITH_URL + metric_toml("query = 'up{color=\"{colour}\"}'", provider="prometheus"),
        "environments.prod.analysis.metrics.0.query: unknown placeholder {colour} (known:"
        " {color}, {region}, {target_group}, {load_balancer}, {window})",
    ),
    "unknown placeholder in requests_query": (
        WITH_URL + metric_toml("requests_query = 'sum(x[{period}])'", provider="prometheus"),
        "environments.prod.analysis.metrics.0.requests_query: unknown placeholder {period}",
    ),
    "unknown placeholder in a dimension": (
        metric_toml('query = { metric = "X", dimensions = { TargetGroup = "{tg}" } }'),
        "environments.prod.analysis.metrics.0.query.dimensions: TargetGroup: unknown"
        " placeholder {tg}",
    ),
    "cloudwatch window that is no period": (
        metric_toml('window = "45s"'),
        "environments.prod.analysis.metrics.0.window: 45s is not a CloudWatch period: use 1s,"
        " 5s, 10s, 30s or a multiple of 60s",
    ),
    "cloudwatch window of 90s": (
        metric_toml('window = "1m30s"'),
        "environments.prod.analysis.metrics.0.window: 1m30s is not a CloudWatch period",
    ),
    "window under a second": (
        WITH_URL + metric_toml('window = "500ms"', provider="prometheus"),
        "environments.prod.analysis.metrics.0.window: window must be a whole number of"
        " seconds, at least 1s",
    ),
    "zero interval": (
        metric_toml('interval = "0s"'),
        "environments.prod.analysis.metrics.0.interval: interval must be at least 1s",
    ),
    "negative failure_limit": (
        metric_toml("failure_limit = -1"),
        "environments.prod.analysis.metrics.0.failure_limit: Input should be greater than or"
        " equal to 0",
    ),
    "min_requests without a request count (cloudwatch)": (
        metric_toml("min_requests = 50"),
        "environments.prod.analysis.metrics.0.min_requests: min_requests needs a request count:"
        " requests_query (prometheus), or query.requests or query.divide_by (cloudwatch)",
    ),
    "min_requests without requests_query (prometheus)": (
        WITH_URL + metric_toml("min_requests = 50", provider="prometheus"),
        "environments.prod.analysis.metrics.0.min_requests: min_requests needs a request count",
    ),
    "requests_query on a cloudwatch metric": (
        metric_toml("requests_query = 'sum(x)'"),
        "environments.prod.analysis.metrics.0.requests_query: requests_query is for prometheus"
        " metrics",
    ),
    "missing_is_zero without a request count": (
        metric_toml('query = { metric = "X", missing_is_zero = true }'),
        "environments.prod.analysis.metrics.0.query.missing_is_zero: missing_is_zero needs"
        " requests or divide_by",
    ),
    "duplicate names": (
        metric_toml() + metric_toml(),
        "environments.prod.analysis: metrics: more than one is named target-5xx",
    ),
    "a name that is not a slug": (
        metric_toml(name="Error Rate"),
        "environments.prod.analysis.metrics.0.name: String should match pattern",
    ),
    "unknown provider": (
        metric_toml(provider="datadog"),
        "environments.prod.analysis.metrics.0.provider: Input should be 'prometheus' or"
        " 'cloudwatch'",
    ),
    "a string for a cloudwatch query": (
        metric_toml('query = "HTTPCode_Target_5XX_Count"'),
        "environments.prod.analysis.metrics.0.query: a cloudwatch metric's query is a table",
    ),
    "a table for a prometheus query": (
        WITH_URL + metric_toml('query = { metric = "X" }', provider="prometheus"),
        "environments.prod.analysis.metrics.0.query: a prometheus metric's query is a PromQL"
        " string, not a table",
    ),
    "a number for a query": (
        metric_toml("query = 3"),
        "environments.prod.analysis.metrics.0.query: expected a PromQL string (prometheus) or a"
        " table (cloudwatch)",
    ),
    "an unknown key in a cloudwatch query": (
        metric_toml('query = { metric = "X", statistic = "Sum" }'),
        "environments.prod.analysis.metrics.0.query.statistic: Extra inputs are not permitted",
    ),
    "an unknown statistic": (
        metric_toml('query = { metric = "X", stat = "p99" }'),
        "environments.prod.analysis.metrics.0.query.stat: Input should be 'Sum', 'Average',"
        " 'Minimum', 'Maximum' or 'SampleCount'",
    ),
    "an empty PromQL query": (
        WITH_URL + metric_toml("query = ' '", provider="prometheus"),
        "environments.prod.analysis.metrics.0.query: the query is empty",
    ),
    "an unknown key in analysis": (
        "\n[environments.prod.analysis]\nprometheus = 'http://x'\n",
        "environments.prod.analysis.prometheus: Extra inputs are not permitted",
    ),
    "an unknown key in a metric": (
        metric_toml("threshold = 3"),
        "environments.prod.analysis.metrics.0.threshold: Extra inputs are not permitted",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_analysis_table_is_one_line_naming_the_key(case: str, tmp_path: Path) -> None:
    text, expected = CONFIG_CASES[case]

    with pytest.raises(ConfigError) as caught:
        load(tmp_path, EXAMPLE + text)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'deploy.toml'}: {expected}"), message


def test_placeholders_the_environment_cannot_fill_are_refused() -> None:
    uses_target_group = {
        "name": "target-5xx",
        "provider": "cloudwatch",
        "max": 1,
        "query": {"metric": "X", "dimensions": {"TargetGroup": "{target_group}"}},
    }
    uses_load_balancer = uses_target_group | {
        "query": {"metric": "X", "dimensions": {"LoadBalancer": "{load_balancer}"}}
    }
    mesh = {
        "router": {
            "kind": "app_mesh",
            "mesh_name": "game",
            "virtual_router_name": "game",
            "route_name": "game",
        },
        "blue": {"cluster": "b", "service": "game", "virtual_node": "blue", "url": "http://b"},
        "green": {"cluster": "g", "service": "game", "virtual_node": "green", "url": "http://g"},
    }

    with pytest.raises(
        ValueError, match=re.escape("uses {target_group}, which needs blue.target_group_arn")
    ):
        environment(**mesh, analysis={"metrics": [uses_target_group]})
    with pytest.raises(
        ValueError, match=re.escape("uses {load_balancer}, which needs the alb router")
    ):
        environment(**mesh, analysis={"metrics": [uses_load_balancer]})
    with pytest.raises(ValueError, match="not a load balancer listener ARN: 'x'"):
        environment(
            router={"kind": "alb", "listener_arn": "x"}, analysis={"metrics": [uses_load_balancer]}
        )
    environment(**mesh, analysis={"metrics": [uses_target_group | {"query": {"metric": "X"}}]})


def test_in_region_overrides_the_url_and_replaces_the_metrics() -> None:
    prometheus = {
        "name": "error-rate",
        "provider": "prometheus",
        "max": 0.05,
        "query": 'sum(x{color="{color}"})',
    }
    config = environment(
        regions=["us-west-2", "us-east-1"],
        analysis={
            "prometheus_url": "http://west:9090",
            "metrics": [prometheus, prometheus | {"name": "other"}],
        },
        in_region={
            "us-east-1": {
                "analysis": {
                    "prometheus_url": "http://east:9090",
                    "metrics": [prometheus | {"max": 0.1}],
                }
            }
        },
    )

    east = config.for_region("us-east-1")
    west = config.for_region("us-west-2")

    assert east.analysis.prometheus_url == "http://east:9090"
    assert [(m.name, m.max) for m in east.analysis.metrics] == [("error-rate", 0.1)]
    assert west.analysis == config.analysis
    with pytest.raises(
        ValueError, match=re.escape("in_region.us-east-1.analysis.metrics.0.query: unknown")
    ):
        environment(
            regions=["us-west-2", "us-east-1"],
            analysis={"prometheus_url": "http://west:9090"},
            in_region={
                "us-east-1": {"analysis": {"metrics": [prometheus | {"query": 'up{x="{nope}"}'}]}}
            },
        )


# --- placeholders --------------------------------------------------------------------------------


def test_placeholders_in_promql_leave_label_matchers_alone() -> None:
    promql = 'sum(rate(x{proxy="tasks-{region}",server=~"{color}-.*",code=~"5.{2}"}[{window}]))'

    assert placeholders_in(promql) == ["region", "color", "window"]
    assert check_placeholders(promql) == promql
    assert (
        expand(promql, {"region": "us-west-2", "color": "green", "window": "30s"})
        == 'sum(rate(x{proxy="tasks-us-west-2",server=~"green-.*",code=~"5.{2}"}[30s]))'
    )
    with pytest.raises(ValueError, match=re.escape("unknown placeholder {colour}")):
        check_placeholders("up{color='{colour}'}")
    with pytest.raises(ValueError, match=r"\{target_group\} has no value here"):
        expand("{target_group}", {})


def test_the_alb_dimensions_come_from_the_arns() -> None:
    assert target_group_dimension(TARGET_GROUP) == "targetgroup/game-green/fedcba9876543210"
    assert load_balancer_dimension(LISTENER) == "app/game-prod/0123456789abcdef"
    rule = LISTENER.replace(":listener/", ":listener-rule/") + "/9683b2d02a6cabee"
    assert load_balancer_dimension(rule) == "app/game-prod/0123456789abcdef"
    for bad in ("x", TARGET_GROUP):
        with pytest.raises(ValueError, match="not a"):
            load_balancer_dimension(bad)


def test_measure_input_of_an_environment() -> None:
    metric = AnalysisMetric.model_validate(
        {
            "name": "target-5xx",
            "provider": "cloudwatch",
            "max": 0.01,
            "window": "2m",
            "query": {"metric": "X", "dimensions": {"TargetGroup": "{target_group}"}},
        }
    )
    config = environment(analysis={"prometheus_url": "http://p:9090", "metrics": [metric]})

    arg = MeasureInput.of(config, metric, "green")

    assert arg == MeasureInput(
        region="us-west-2",
        metric=metric,
        color="green",
        target_group_arn=ENVIRONMENT["green"]["target_group_arn"],
        prometheus_url="http://p:9090",
        listener_arn=ENVIRONMENT["router"]["listener_arn"],
    )
    assert arg.placeholder_values() == {
        "color": "green",
        "region": "us-west-2",
        "window": "2m",
        "target_group": "targetgroup/green/2",
        "load_balancer": "app/game/1",
    }


def test_the_window_looks_back_no_further_than_the_color_s_first_traffic() -> None:
    metric = AnalysisMetric(
        name="error-rate", provider="prometheus", query="x[{window}]", max=0.05, window="30s"
    )
    began = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    arg = MeasureInput(region="us-west-2", metric=metric, color="green", not_before=began)

    assert arg.window_at(began + timedelta(seconds=0.2)) == timedelta(seconds=1)
    assert arg.window_at(began + timedelta(seconds=7.3)) == timedelta(seconds=8)
    assert arg.window_at(began + timedelta(minutes=5)) == timedelta(seconds=30)
    assert arg.placeholder_values(began + timedelta(seconds=12))["window"] == "12s"
    whole = arg.model_copy(update={"not_before": None})
    assert whole.window_at(began + timedelta(seconds=3)) == timedelta(seconds=30)


def test_activity_input_and_tallies_go_through_temporal_s_converter(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE + PROMETHEUS + CLOUDWATCH).environment("prod")
    tally = MetricTally.of(config.analysis.metrics[1])
    tally.add(judge(config.analysis.metrics[1], seen(0.5, 200)))
    converter = pydantic_data_converter.payload_converter
    for value, kind in (
        (MeasureInput.of(config, config.analysis.metrics[1], "blue"), MeasureInput),
        (MeasureInput.of(config, config.analysis.metrics[0], "green"), MeasureInput),
        (seen(None, None), Measurement),
        ([tally], list[MetricTally]),
    ):
        [payload] = converter.to_payloads([value])
        assert isinstance(payload, Payload)
        assert converter.from_payloads([payload], [kind]) == [value]


# --- the verdict on one measurement --------------------------------------------------------------


def seen(value: float | None, requests: float | None, detail: str = "") -> Measurement:
    return Measurement(
        metric="error-rate", value=value, requests=requests, measured_at=AT, detail=detail
    )


def metric(**fields: Any) -> AnalysisMetric:
    return AnalysisMetric.model_validate(
        {"name": "error-rate", "provider": "prometheus", "query": "x", "max": 0.05} | fields
    )


def test_above_max_fails_and_at_max_passes() -> None:
    failed = judge(metric(), seen(0.21, 412))
    at_max = judge(metric(), seen(0.05, 412))

    assert failed == MetricResult(
        metric="error-rate",
        verdict="failed",
        value=0.21,
        requests=412,
        measured_at=AT,
        reason="error-rate 0.21 > max 0.05 (412 requests)",
    )
    assert (at_max.verdict, at_max.reason) == (
        "passed",
        "error-rate 0.05 <= max 0.05 (412 requests)",
    )


def test_below_min_fails_and_at_min_passes() -> None:
    throughput = metric(name="throughput", max=None, min=10)

    assert judge(throughput, seen(9.5, None)).reason == "throughput 9.5 < min 10"
    assert judge(throughput, seen(9.5, None)).verdict == "failed"
    assert judge(throughput, seen(10, None)).reason == "throughput 10 >= min 10"
    assert judge(throughput, seen(10, None)).verdict == "passed"


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_no_data_is_inconclusive_never_a_pass(value: float | None) -> None:
    assert seen(value, value).value is None
    assert seen(value, value).requests is None
    result = judge(metric(), seen(value, 412))
    assert (result.verdict, result.reason) == (
        "inconclusive",
        "error-rate: no data (inconclusive: an empty result is never a pass)",
    )
    # Even with a threshold no value could fail, no data is not a pass.
    assert judge(metric(max=1e300), seen(value, 412)).verdict == "inconclusive"


def test_no_data_says_why_when_the_measurement_does() -> None:
    result = judge(metric(), seen(None, None, "the query returned NaN"))
    assert result.reason == (
        "error-rate: no data: the query returned NaN (inconclusive: an empty result is never a"
        " pass)"
    )


def test_too_few_requests_is_inconclusive_even_when_the_value_fails() -> None:
    counted = metric(min_requests=50, requests_query="sum(y)")

    few = judge(counted, seen(0.9, 12))
    none = judge(counted, seen(0.9, None))
    enough = judge(counted, seen(0.9, 50))

    assert (few.verdict, few.reason) == (
        "inconclusive",
        "error-rate: 12 requests, fewer than min_requests 50 (inconclusive)",
    )
    assert (none.verdict, none.reason) == (
        "inconclusive",
        "error-rate: no request count (inconclusive: min_requests 50 needs one)",
    )
    assert enough.verdict == "failed"


def test_judging_is_deterministic() -> None:
    assert judge(metric(), seen(0.01, 3)) == judge(metric(), seen(0.01, 3))
    assert judge(metric(), seen(0.01, 3)).measured_at == AT


# --- the tally against the limits ----------------------------------------------------------------


def tally_of(verdicts: str, failure_limit: int = 0, inconclusive_limit: int = 0) -> MetricTally:
    """A tally after results written as letters: p passed, f failed, i inconclusive."""
    judged = metric(failure_limit=failure_limit, inconclusive_limit=inconclusive_limit)
    tally = MetricTally.of(judged)
    values = {"p": 0.01, "f": 0.5, "i": None}
    for letter in verdicts:
        tally.add(judge(judged, seen(values[letter], 100)))
    return tally


def test_within_the_limits_there_is_no_verdict() -> None:
    assert tally_of("").verdict_reason() is None
    assert tally_of("ppp").verdict_reason() is None
    assert tally_of("pfpip", failure_limit=1, inconclusive_limit=1).verdict_reason() is None


def test_a_failure_over_the_limit() -> None:
    tally = tally_of("pfpf", failure_limit=1)

    assert (tally.measurements, tally.passes, tally.failures, tally.inconclusive) == (4, 2, 2, 0)
    assert tally.last is not None and tally.last.verdict == "failed"
    assert tally.verdict_reason() == (
        "error-rate failed 2 times in 4 measurements, more than failure_limit 1:"
        " error-rate 0.5 > max 0.05 (100 requests)"
    )
    assert tally.summary() == "error-rate: 4 measured, 2 passed, 2 failed, 0 inconclusive"


def test_inconclusive_over_the_limit() -> None:
    assert tally_of("pi").verdict_reason() == (
        "error-rate was inconclusive once in 2 measurements, more than inconclusive_limit 0:"
        " error-rate: no data (inconclusive: an empty result is never a pass)"
    )


def test_failures_are_told_first_and_the_limits_stay_exceeded() -> None:
    reason = tally_of("ifp").verdict_reason()
    assert reason is not None
    assert reason == "error-rate failed once in 3 measurements, more than failure_limit 0"


def test_a_tally_counts_one_metric() -> None:
    tally = tally_of("")
    other = judge(metric(name="latency"), seen(0.01, 1).model_copy(update={"metric": "latency"}))
    with pytest.raises(ValueError, match="a result of latency added to the tally of error-rate"):
        tally.add(other)


def test_a_tally_serializes_as_json_and_back() -> None:
    tally = tally_of("pfi", failure_limit=2, inconclusive_limit=3)

    again = MetricTally.model_validate_json(tally.model_dump_json())

    assert again == tally
    assert again.verdict_reason() is None
    assert tally.model_dump(mode="json")["last"]["verdict"] == "inconclusive"
