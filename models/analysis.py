"""Metric analysis: the metrics that judge a new version while it gets traffic, and their verdicts.

A metric is a Prometheus query or a CloudWatch metric with a threshold (``max`` or ``min``),
measured every ``interval`` over the last ``window`` (``[environments.<env>.analysis]`` in
deploy.toml, docs/configuration.md). The ``measure_metric`` activity reads one value
(``activities/analysis.py``); :func:`judge` turns it into a verdict, and a :class:`MetricTally`
counts the verdicts of one metric and says when its ``failure_limit`` or ``inconclusive_limit``
is exceeded::

    tally = MetricTally.of(metric)
    tally.add(judge(metric, measurement))   # measurement: what measure_metric returned
    reason = tally.verdict_reason()         # None, or one line saying which limit was exceeded

No data (an empty result, NaN, ±Inf, a division by zero requests) and too few requests are
``inconclusive``, never a pass and never a 0.

Everything here is pure and deterministic (no I/O, no clock: a result's time is its
measurement's), so workflow code may import it.
"""

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.colors import COLORS, Color
from models.durations import Duration, format_duration
from models.strict import StrictModel

if TYPE_CHECKING:
    from models.config import EnvironmentConfig


# --- placeholders ---------------------------------------------------------------------------------

PLACEHOLDERS: dict[str, str] = {
    "color": "the color being judged (the new one): blue or green",
    "region": "the region measured, e.g. us-west-2",
    "target_group": "the TargetGroup dimension of that color's target group: targetgroup/<name>/<id>",
    "load_balancer": "the LoadBalancer dimension of the alb router's load balancer: app/<name>/<id>",
    "window": "the metric's window, as Prometheus writes a duration: 30s, 1m, 1h30m",
}
"""What a query or a dimension value may contain, ``{name}`` in braces, and what it stands for."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``{name}``: a PromQL label matcher always has an operator inside its braces."""


def placeholders_in(text: str) -> list[str]:
    """The placeholder names ``text`` uses, in order: ``['color', 'window']``."""
    return _PLACEHOLDER.findall(text)


def check_placeholders(text: str) -> str:
    """``text`` if every ``{name}`` in it is a known placeholder; else ValueError naming it."""
    for name in placeholders_in(text):
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
    return text


def expand(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` replaced by ``values[name]``::

        expand('up{color="{color}"}', {"color": "green"})  # 'up{color="green"}'

    ValueError naming a placeholder that has no value (``{target_group}`` without one).
    """

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in PLACEHOLDERS:
            check_placeholders(found.group(0))
        if name not in values:
            raise ValueError(f"{{{name}}} has no value here ({_WHY_NONE.get(name, 'none given')})")
        return values[name]

    return _PLACEHOLDER.sub(value, text)


_WHY_NONE = {
    "target_group": "the color has no target_group_arn",
    "load_balancer": "no listener_arn: the router is not an alb",
}


def _arn_resource(arn: str) -> str:
    """What follows the account in an ARN: ``targetgroup/game-blue/73e2d6bc24d8a067``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[5]


def target_group_dimension(target_group_arn: str) -> str:
    """The ``TargetGroup`` dimension of an ALB's metrics, ``targetgroup/<name>/<id>``::

    >>> target_group_dimension(
    ...     "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/game-blue/73e2d6bc24d8a067"
    ... )
    'targetgroup/game-blue/73e2d6bc24d8a067'
    """
    resource = _arn_resource(target_group_arn)
    if not resource.startswith("targetgroup/"):
        raise ValueError(f"not a target group ARN: {target_group_arn!r}")
    return resource


def load_balancer_dimension(listener_arn: str) -> str:
    """The ``LoadBalancer`` dimension of an ALB's metrics, ``app/<name>/<id>``, from the ARN of
    one of its listeners (or listener rules), which contains it::

    >>> load_balancer_dimension(
    ...     "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/game/50dc6c495c0c9188/f2f7dc8efc522ab2"
    ... )
    'app/game/50dc6c495c0c9188'
    """
    kind, _, rest = listener_arn.split(":", 5)[-1].partition("/")
    parts = rest.split("/")
    if (
        not listener_arn.startswith("arn:")
        or kind not in ("listener", "listener-rule")
        or len(parts) < 3
        or not all(parts[:3])
    ):
        raise ValueError(f"not a load balancer listener ARN: {listener_arn!r}")
    return "/".join(parts[:3])


def promql_duration(window: timedelta) -> str:
    """A duration as PromQL writes it: ``30s``, ``1m``, ``1h30m``."""
    return format_duration(window)


# --- configuration (deploy.toml) --------------------------------------------------------------------

Statistic = Literal["Sum", "Average", "Minimum", "Maximum", "SampleCount"]
CLOUDWATCH_SHORT_PERIODS = (1, 5, 10, 30)
"""Seconds a CloudWatch period may be besides a multiple of 60 (high-resolution metrics)."""


class CloudWatchQuery(StrictModel):
    """One CloudWatch metric (and what to divide it by): ``metric / divide_by`` over the window.

    The division is done by the activity with two MetricStat queries (moto, as the local
    environment's CloudWatch, answers no metric-math expression).
    """

    namespace: str = Field(default="AWS/ApplicationELB", min_length=1, max_length=255)
    metric: str = Field(min_length=1, max_length=255)
    stat: Statistic = "Sum"
    divide_by: str | None = Field(default=None, min_length=1, max_length=255)
    """A second metric of the same namespace, dimensions and stat: the value is metric / this."""
    requests: str | None = Field(default=None, min_length=1, max_length=255)
    """The metric whose Sum is the number of requests in the window; defaults to divide_by."""
    missing_is_zero: StrictBool = False
    """No datapoint of ``metric`` counts as 0, when the request count has datapoints: an ALB
    publishes no HTTPCode_Target_5XX_Count at all for a minute without 5xx. Needs requests or
    divide_by: with no request count either, there is still no data."""
    dimensions: dict[str, str] = Field(default_factory=dict)
    """Name → value; values may use the placeholders. CloudWatch matches them exactly: an ALB's
    target-group metrics have both TargetGroup and LoadBalancer."""

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 30:
            raise ValueError("CloudWatch takes at most 30 dimensions")
        for name, text in value.items():
            if not name or not text:
                raise ValueError("a dimension needs a name and a value")
            try:
                check_placeholders(text)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return value

    @field_validator("missing_is_zero")
    @classmethod
    def _zero_needs_requests(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not (info.data.get("requests") or info.data.get("divide_by")):
            raise ValueError("missing_is_zero needs requests or divide_by: a count that has data")
        return value

    @property
    def request_metric(self) -> str | None:
        """The metric whose Sum counts the requests: ``requests``, else ``divide_by``."""
        return self.requests or self.divide_by


def _query_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "promql"
    if isinstance(value, dict | CloudWatchQuery):
        return "table"
    return None


Query = Annotated[
    Annotated[str, Tag("promql")] | Annotated[CloudWatchQuery, Tag("table")],
    Discriminator(
        _query_kind,
        custom_error_type="query_type",
        custom_error_message="expected a PromQL string (prometheus) or a table (cloudwatch)",
    ),
]
"""A PromQL string, or a CloudWatch table; only the matching one is tried, so an error inside a
table names the table's key rather than saying the table is not a string."""

_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class AnalysisMetric(StrictModel):
    """One metric with its threshold, measured every ``interval`` over the last ``window``."""

    name: str = Field(pattern=_NAME)
    """A short slug shown in every verdict: ``error-rate``."""
    provider: Literal["prometheus", "cloudwatch"]
    query: Query
    """prometheus: a PromQL string (an instant query); cloudwatch: a :class:`CloudWatchQuery`."""
    requests_query: str | None = None
    """prometheus: PromQL giving the number of requests in the window."""
    max: float | None = Field(default=None, allow_inf_nan=False)
    """Fails when the value is above it."""
    min: float | None = Field(default=None, allow_inf_nan=False)
    """Fails when the value is below it."""
    window: Duration = timedelta(minutes=1)
    """How far back each measurement looks: CloudWatch's StartTime..EndTime and Period;
    ``{window}`` in PromQL."""
    interval: Duration = timedelta(minutes=1)
    """How often the metric is measured."""
    failure_limit: int = Field(default=0, ge=0)
    """Failed measurements tolerated: the analysis fails when there are more."""
    inconclusive_limit: int = Field(default=0, ge=0)
    """Inconclusive measurements tolerated: the analysis fails when there are more."""
    min_requests: int = Field(default=0, ge=0)
    """Fewer requests than this in the window is inconclusive; above 0 needs a request count."""

    @field_validator("query")
    @classmethod
    def _query_fits_provider(
        cls, value: "str | CloudWatchQuery", info: ValidationInfo
    ) -> "str | CloudWatchQuery":
        provider = info.data.get("provider")
        if provider == "prometheus" and not isinstance(value, str):
            raise ValueError("a prometheus metric's query is a PromQL string, not a table")
        if provider == "cloudwatch" and isinstance(value, str):
            raise ValueError(
                "a cloudwatch metric's query is a table: { metric = ..., namespace = ...,"
                " stat = ..., divide_by = ..., dimensions = { ... } }"
            )
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("the query is empty")
            check_placeholders(value)
        return value

    @field_validator("requests_query")
    @classmethod
    def _requests_query(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("provider") == "cloudwatch":
            raise ValueError(
                "requests_query is for prometheus metrics; a cloudwatch metric names its"
                " request count in query.requests (or query.divide_by)"
            )
        if not value.strip():
            raise ValueError("requests_query is empty")
        return check_placeholders(value)

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        seconds = value.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError("window must be a whole number of seconds, at least 1s")
        if info.data.get("provider") == "cloudwatch" and not (
            int(seconds) in CLOUDWATCH_SHORT_PERIODS or seconds % 60 == 0
        ):
            raise ValueError(
                f"{format_duration(value)} is not a CloudWatch period:"
                " use 1s, 5s, 10s, 30s or a multiple of 60s"
            )
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return value

    @field_validator("min_requests")
    @classmethod
    def _min_requests(cls, value: int, info: ValidationInfo) -> int:
        if value == 0 or "query" not in info.data:
            return value
        query = info.data["query"]
        counted = (
            info.data.get("requests_query") is not None
            if isinstance(query, str)
            else query.request_metric is not None
        )
        if not counted:
            raise ValueError(
                "min_requests needs a request count: requests_query (prometheus), or"
                " query.requests or query.divide_by (cloudwatch)"
            )
        return value

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        if self.max is None and self.min is None:
            raise ValueError(f"{self.name}: give a threshold, max or min")
        if self.max is not None and self.min is not None:
            raise ValueError(f"{self.name}: give one threshold, max or min, not both")
        return self

    def texts(self) -> list[str]:
        """The texts the placeholders are expanded in: the queries, the dimension values."""
        if isinstance(self.query, str):
            return [self.query, *([self.requests_query] if self.requests_query else [])]
        return list(self.query.dimensions.values())

    def placeholders(self) -> set[str]:
        """The placeholder names this metric uses."""
        return {name for text in self.texts() for name in placeholders_in(text)}


class AnalysisConfig(StrictModel):
    """``[environments.<env>.analysis]``: where Prometheus is, and the metrics."""

    prometheus_url: str | None = None
    """The Prometheus HTTP API's base URL, e.g. ``http://prometheus:9090``."""
    metrics: list[AnalysisMetric] = Field(default_factory=list)

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _prometheus_and_names(self) -> Self:
        users = [m.name for m in self.metrics if m.provider == "prometheus"]
        if users and self.prometheus_url is None:
            raise ValueError(f"prometheus_url is required: metric {users[0]} uses prometheus")
        names = [m.name for m in self.metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"metrics: more than one is named {', '.join(repeated)}")
        return self

    def check_environment(self, config: "EnvironmentConfig") -> None:
        """ValueError when a metric uses a placeholder the environment has no value for:
        ``{target_group}`` without both colors' target groups, ``{load_balancer}`` without the
        alb router."""
        for metric in self.metrics:
            used = metric.placeholders()
            if "target_group" in used and not (
                config.blue.target_group_arn and config.green.target_group_arn
            ):
                raise ValueError(
                    f"analysis: metric {metric.name} uses {{target_group}}, which needs"
                    " blue.target_group_arn and green.target_group_arn"
                )
            if "load_balancer" in used and config.router.kind != "alb":
                raise ValueError(
                    f"analysis: metric {metric.name} uses {{load_balancer}}, which needs the"
                    " alb router"
                )
            try:
                if "target_group" in used:
                    for color in COLORS:
                        target_group_dimension(str(config.color(color).target_group_arn))
                if "load_balancer" in used and config.router.kind == "alb":
                    load_balancer_dimension(config.router.listener_arn)
            except ValueError as err:
                raise ValueError(f"analysis: metric {metric.name}: {err}") from None


# --- the activity's input and output ----------------------------------------------------------------


class MeasureInput(StrictModel):
    """Measure one metric of one color in one region, now."""

    region: str
    metric: AnalysisMetric
    color: Color
    """The color judged: ``{color}``, and whose target group is ``{target_group}``."""
    target_group_arn: str | None = None
    prometheus_url: str | None = None
    listener_arn: str | None = None
    """The alb router's listener: ``{load_balancer}`` is its load balancer."""
    not_before: datetime | None = None
    """Look back no further than this: when the color got its traffic in this deployment. What
    it served before (a bad version rolled back a moment ago, on the same target group and the
    same servers' series) is not this version's to answer for."""

    def window_at(self, now: datetime) -> timedelta:
        """The metric's window, cut short at ``not_before``: whole seconds, at least 1."""
        window = self.metric.window
        if self.not_before is None:
            return window
        since = math.ceil((now - self.not_before).total_seconds())
        return min(window, timedelta(seconds=max(since, 1)))

    @classmethod
    def of(
        cls, config: "EnvironmentConfig", metric: AnalysisMetric, color: Color
    ) -> "MeasureInput":
        """The input for ``metric`` of ``color`` in the region ``config`` describes (use
        ``EnvironmentConfig.for_region`` first for another region)."""
        return cls(
            region=config.region,
            metric=metric,
            color=color,
            target_group_arn=config.color(color).target_group_arn,
            prometheus_url=config.analysis.prometheus_url,
            listener_arn=config.router.listener_arn if config.router.kind == "alb" else None,
        )

    def placeholder_values(self, now: datetime | None = None) -> dict[str, str]:
        """Each placeholder's value for a measurement at ``now`` (``{window}``: ``window_at``;
        the whole window without ``now``); those without one are left out."""
        window = self.window_at(now) if now is not None else self.metric.window
        values = {
            "color": self.color,
            "region": self.region,
            "window": promql_duration(window),
        }
        if self.target_group_arn:
            values["target_group"] = target_group_dimension(self.target_group_arn)
        if self.listener_arn:
            values["load_balancer"] = load_balancer_dimension(self.listener_arn)
        return values


class Measurement(StrictModel):
    """One reading of a metric. ``value`` None is no data: never read it as 0."""

    metric: str
    value: float | None
    """None: no data (an empty result, NaN, ±Inf, a division by zero or by no requests)."""
    requests: float | None
    """Requests in the window; None without a request count or with no data for it."""
    measured_at: datetime
    detail: str = ""
    """How the value was read, or why there is none: ``the query returned NaN``."""

    @field_validator("value", "requests")
    @classmethod
    def _finite_or_none(cls, value: float | None) -> float | None:
        """NaN and ±Inf are no data: kept as None, which JSON can carry."""
        return value if value is None or math.isfinite(value) else None


Verdict = Literal["passed", "failed", "inconclusive"]


class MetricResult(StrictModel):
    """One measurement judged against its metric's threshold."""

    metric: str
    verdict: Verdict
    value: float | None
    requests: float | None
    measured_at: datetime
    reason: str
    """One line for a person: ``error-rate 0.21 > max 0.05 (412 requests)``."""


def number(value: float) -> str:
    """A value as a person reads it: ``412``, ``0.21``, ``0.2117``, ``1.5e+07``."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def judge(metric: AnalysisMetric, seen: Measurement) -> MetricResult:
    """The verdict on one measurement of ``metric``: inconclusive without enough requests or
    without data, else failed or passed against its ``max`` or ``min``.

    >>> from datetime import UTC, datetime
    >>> m = AnalysisMetric(name="error-rate", provider="prometheus", query="x", max=0.05)
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> judge(m, Measurement(metric="error-rate", value=0.21, requests=412, measured_at=at)).reason
    'error-rate 0.21 > max 0.05 (412 requests)'
    """

    def result(verdict: Verdict, reason: str) -> MetricResult:
        return MetricResult(
            metric=metric.name,
            verdict=verdict,
            value=seen.value,
            requests=seen.requests,
            measured_at=seen.measured_at,
            reason=reason,
        )

    name, value, requests = metric.name, seen.value, seen.requests
    if metric.min_requests > 0:
        if requests is None or not math.isfinite(requests):
            return result(
                "inconclusive",
                f"{name}: no request count (inconclusive: min_requests {metric.min_requests}"
                " needs one)",
            )
        if requests < metric.min_requests:
            return result(
                "inconclusive",
                f"{name}: {number(requests)} requests, fewer than min_requests"
                f" {metric.min_requests} (inconclusive)",
            )
    if value is None or not math.isfinite(value):
        why = f": {seen.detail}" if seen.detail else ""
        return result(
            "inconclusive", f"{name}: no data{why} (inconclusive: an empty result is never a pass)"
        )
    counted = (
        f" ({number(requests)} requests)"
        if requests is not None and math.isfinite(requests)
        else ""
    )
    if metric.max is not None:
        if value > metric.max:
            return result("failed", f"{name} {number(value)} > max {number(metric.max)}{counted}")
        return result("passed", f"{name} {number(value)} <= max {number(metric.max)}{counted}")
    assert metric.min is not None  # one threshold: the model checks it
    if value < metric.min:
        return result("failed", f"{name} {number(value)} < min {number(metric.min)}{counted}")
    return result("passed", f"{name} {number(value)} >= min {number(metric.min)}{counted}")


class MetricTally(BaseModel):
    """The verdicts of one metric so far, and its limits: kept in the deployment's status.

    The analysis fails when ``failures`` exceed ``failure_limit`` or ``inconclusive`` exceed
    ``inconclusive_limit`` (as Argo Rollouts' failureLimit and inconclusiveLimit).
    """

    model_config = ConfigDict(extra="forbid")

    metric: str
    failure_limit: int = 0
    inconclusive_limit: int = 0
    measurements: int = 0
    failures: int = 0
    inconclusive: int = 0
    passes: int = 0
    last: MetricResult | None = None

    @classmethod
    def of(cls, metric: AnalysisMetric) -> "MetricTally":
        """A tally of ``metric`` with nothing counted yet."""
        return cls(
            metric=metric.name,
            failure_limit=metric.failure_limit,
            inconclusive_limit=metric.inconclusive_limit,
        )

    def add(self, result: MetricResult) -> None:
        """Count one more verdict of this metric."""
        if result.metric != self.metric:
            raise ValueError(f"a result of {result.metric} added to the tally of {self.metric}")
        self.measurements += 1
        if result.verdict == "failed":
            self.failures += 1
        elif result.verdict == "inconclusive":
            self.inconclusive += 1
        else:
            self.passes += 1
        self.last = result

    def verdict_reason(self) -> str | None:
        """One line saying which limit is exceeded (failures first), or None while neither is."""
        last = self.last
        if self.failures > self.failure_limit:
            why = f": {last.reason}" if last and last.verdict == "failed" else ""
            return (
                f"{self.metric} failed {_times(self.failures)} in {self.measurements}"
                f" measurements, more than failure_limit {self.failure_limit}{why}"
            )
        if self.inconclusive > self.inconclusive_limit:
            why = f": {last.reason}" if last and last.verdict == "inconclusive" else ""
            return (
                f"{self.metric} was inconclusive {_times(self.inconclusive)} in"
                f" {self.measurements} measurements, more than inconclusive_limit"
                f" {self.inconclusive_limit}{why}"
            )
        return None

    def summary(self) -> str:
        """One line: ``error-rate: 5 measured, 4 passed, 0 failed, 1 inconclusive``."""
        return (
            f"{self.metric}: {self.measurements} measured, {self.passes} passed,"
            f" {self.failures} failed, {self.inconclusive} inconclusive"
        )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"
