"""Metric analysis: one measurement of one metric, from Prometheus or CloudWatch.

The activity reads a number and says nothing about it: :func:`models.analysis.judge` gives the
verdict in the workflow. No data stays no data (``value`` None): an empty result, NaN, ±Inf, no
datapoints, a division by zero.

- **prometheus**: an instant query (``GET <prometheus_url>/api/v1/query``), at the same time for
  the value and the request count. A scalar, or a vector of one series; an empty vector is no
  data; several series are refused: the query must aggregate them.
- **cloudwatch**: one ``GetMetricData`` call over the last ``window`` (its Period the window),
  a ``MetricStat`` per metric and statistic needed, the same one asked once. The values of the
  window's periods are combined as the statistic says: Sum and SampleCount added up, Minimum the
  least, Maximum the greatest, Average as the Sum over the SampleCount. ``divide_by`` is divided
  here: moto, the local environment's CloudWatch, answers no metric math.

A query that cannot work (bad PromQL, several series, a matrix, a dimension without a value) is a
non-retryable ``AnalysisQueryError`` with the reason; no answer, a 5xx or throttling is retried.
"""

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import http
from activities.aws import aws_call, aws_client
from models.analysis import CloudWatchQuery, MeasureInput, Measurement, expand
from models.durations import format_duration

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDataQueryTypeDef

QUERY_ERROR = "AnalysisQueryError"
"""The type of the ApplicationError for a query that cannot work: retrying will not help."""
PROMETHEUS_TIMEOUT = 10.0
"""Seconds an instant query may take; Prometheus is asked to give up at the same time."""


def query_error(message: str) -> ApplicationError:
    return ApplicationError(message, type=QUERY_ERROR, non_retryable=True)


@activity.defn
def measure_metric(arg: MeasureInput) -> Measurement:
    """The value of ``arg.metric`` for ``arg.color`` now, over the metric's window, and the
    number of requests where the metric counts them; ``value`` None when there is no data."""
    now = datetime.now(UTC)
    try:
        values = arg.placeholder_values(now)
    except ValueError as err:
        raise query_error(f"{arg.metric.name}: {err}") from None
    if isinstance(arg.metric.query, CloudWatchQuery):
        return _cloudwatch(arg, arg.metric.query, values, now)
    return _prometheus(arg, arg.metric.query, values, now)


def _expand(arg: MeasureInput, text: str, values: dict[str, str]) -> str:
    try:
        return expand(text, values)
    except ValueError as err:
        raise query_error(f"{arg.metric.name}: {err}") from None


# --- Prometheus -----------------------------------------------------------------------------------


def _prometheus(
    arg: MeasureInput, query: str, values: dict[str, str], now: datetime
) -> Measurement:
    if not arg.prometheus_url:
        raise query_error(f"{arg.metric.name}: a prometheus metric needs a prometheus_url")
    promql = _expand(arg, query, values)
    value, detail = instant_query(arg.prometheus_url, promql, now)
    requests = None
    if arg.metric.requests_query:
        counted = _expand(arg, arg.metric.requests_query, values)
        requests, requests_detail = instant_query(arg.prometheus_url, counted, now)
        if requests is None:
            detail += f"; requests_query: {requests_detail}"
    return Measurement(
        metric=arg.metric.name, value=value, requests=requests, measured_at=now, detail=detail
    )


def instant_query(base_url: str, promql: str, at: datetime) -> tuple[float | None, str]:
    """The value of ``promql`` at ``at`` from the Prometheus at ``base_url``, and how it was
    read (or why there is none): ``(0.21, "1 series")``, ``(None, "the query returned NaN")``.

    A non-retryable AnalysisQueryError for a query Prometheus refuses (its own message) or
    whose answer is not one number; a retryable ApplicationError when Prometheus is unreachable
    or answers 5xx.
    """
    endpoint = f"{base_url.rstrip('/')}/api/v1/query"
    params = {
        "query": promql,
        "time": f"{at.timestamp():.3f}",
        "timeout": f"{PROMETHEUS_TIMEOUT:g}s",
    }
    response = http.request(f"{endpoint}?{urlencode(params)}", timeout=PROMETHEUS_TIMEOUT + 2)
    if response.status in (400, 422):
        # bad_data (400): the PromQL does not parse; execution (422): it cannot be evaluated.
        said = _field(response.body, "error") or http.snippet(response.body)
        raise query_error(f"prometheus refused {promql!r}: {said}")
    http.raise_for_status(response, "GET", endpoint)
    return parse_answer(promql, response.body)


def parse_answer(promql: str, body: str) -> tuple[float | None, str]:
    """The number in an instant query's JSON answer (see :func:`instant_query`)."""
    try:
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise query_error(
                f"prometheus answered {promql!r} with {answer.get('status')!r}:"
                f" {answer.get('error', http.snippet(body))}"
            )
        kind, result = answer["data"]["resultType"], answer["data"]["result"]
    except (ValueError, KeyError, TypeError, AttributeError):
        too_long = len(body.encode()) >= http.MAX_BODY
        why = (
            "an answer longer than 64 KiB: the query must return one series"
            if too_long
            else f"not a Prometheus query answer: {http.snippet(body)}"
        )
        raise query_error(f"prometheus: {promql!r}: {why}") from None
    if kind == "scalar":
        return _number(promql, result[1], "a scalar")
    if kind != "vector":
        raise query_error(
            f"prometheus: {promql!r} returned a {kind}, not one number: use an instant vector"
            " (rate(x[{window}]), not x[{window}]) or a scalar"
        )
    if not result:
        return None, "the query returned no series"
    if len(result) > 1:
        labels = ", ".join(_labels(series.get("metric", {})) for series in result[:3])
        raise query_error(
            f"prometheus: {promql!r} returned {len(result)} series ({labels}"
            f"{', …' if len(result) > 3 else ''}); the query must return one series: aggregate"
            " it (sum, max, …) or narrow its labels"
        )
    return _number(promql, result[0]["value"][1], "1 series")


def _number(promql: str, text: Any, how: str) -> tuple[float | None, str]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise query_error(f"prometheus: {promql!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        return None, f"the query returned {text}"
    return value, how


def _labels(metric: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _field(body: str, name: str) -> str | None:
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


# --- CloudWatch -----------------------------------------------------------------------------------


def _cloudwatch(
    arg: MeasureInput, query: CloudWatchQuery, values: dict[str, str], now: datetime
) -> Measurement:
    window = arg.window_at(now)
    dimensions: list[DimensionTypeDef] = [
        {"Name": name, "Value": _expand(arg, value, values)}
        for name, value in query.dimensions.items()
    ]
    # (metric, statistic) → the query's Id; each asked once.
    ids: dict[tuple[str, str], str] = {}

    def want(metric: str, stat: str) -> None:
        ids.setdefault((metric, stat), f"m{len(ids)}")

    measured = [query.metric, *([query.divide_by] if query.divide_by else [])]
    for metric in measured:
        for stat in ("Sum", "SampleCount") if query.stat == "Average" else (query.stat,):
            want(metric, stat)
    if query.request_metric:
        want(query.request_metric, "Sum")

    queries: list[MetricDataQueryTypeDef] = [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": query.namespace,
                    "MetricName": metric,
                    "Dimensions": dimensions,
                },
                "Period": int(arg.metric.window.total_seconds()),
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for (metric, stat), query_id in ids.items()
    ]
    found = _metric_data(arg.region, queries, now - window, now)
    points = {key: found.get(query_id, []) for key, query_id in ids.items()}

    def aggregate(metric: str, stat: str) -> float | None:
        if stat == "Average":
            total, count = aggregate(metric, "Sum"), aggregate(metric, "SampleCount")
            return None if total is None or not count else total / count
        seen = points[(metric, stat)]
        if not seen:
            return None
        return min(seen) if stat == "Minimum" else max(seen) if stat == "Maximum" else sum(seen)

    span = format_duration(window)
    requests = aggregate(query.request_metric, "Sum") if query.request_metric else None
    value = aggregate(query.metric, query.stat)
    detail = f"{query.stat} of {query.metric} over {span}"
    if value is None and query.missing_is_zero and requests is not None:
        value, detail = 0.0, f"no datapoint of {query.metric} in {span}: 0 (missing_is_zero)"
    elif value is None:
        detail = f"no datapoint of {query.metric} in {span}"
    if value is not None and query.divide_by:
        divisor = aggregate(query.divide_by, query.stat)
        if divisor is None:
            value, detail = None, f"no datapoint of {query.divide_by} in {span}"
        elif divisor == 0:
            value, detail = None, f"{query.divide_by} is 0 in {span}: nothing to divide by"
        else:
            value, detail = value / divisor, f"{detail} / {query.divide_by}"
    return Measurement(
        metric=arg.metric.name,
        value=value if value is None or math.isfinite(value) else None,
        requests=requests,
        measured_at=now,
        detail=detail,
    )


def _metric_data(
    region: str, queries: list["MetricDataQueryTypeDef"], start: datetime, end: datetime
) -> dict[str, list[float]]:
    """The values GetMetricData returns for each query Id, every page read."""
    client = aws_client("cloudwatch", region)
    found: dict[str, list[float]] = {}
    with aws_call("cloudwatch.GetMetricData"):
        pages = client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                status = result.get("StatusCode", "Complete")
                if status in ("InternalError", "Forbidden"):
                    said = "; ".join(m.get("Value", "") for m in result.get("Messages", []))
                    raise ApplicationError(
                        f"cloudwatch.GetMetricData: {result.get('Id')}: {status}: {said}",
                        type=f"GetMetricData{status}",
                        non_retryable=status == "Forbidden",
                    )
                found.setdefault(result["Id"], []).extend(result.get("Values", []))
    return found
