"""The local stand-in for CloudWatch's alarm evaluation: alarm states set from the metrics.

moto stores metric alarms but never evaluates them: an alarm stays in whatever state
``set_alarm_state`` last gave it. ``AlarmEvaluator.evaluate``, run every EVALUATE_INTERVAL
seconds per region, does what CloudWatch would for each alarm the environment's bake watches
in that region (``[bake] alarms``, ``in_region`` overrides applied): it reads the alarm's
definition (``describe_alarms``), computes its statistic over each of its last
``EvaluationPeriods`` periods from the metrics in moto (those ``cloudwatch_metrics.py``
publishes), and sets the alarm to ALARM or OK, with a reason that gives the numbers.

Simplified, as a stand-in may be:

- the periods are the last ``EvaluationPeriods`` periods of ``Period`` seconds up to now, evaluated
  every second, not periods aligned on the clock evaluated once a period: a burst of 5xx shows
  within a second or two instead of at the next minute;
- ALARM when at least ``DatapointsToAlarm`` (default: all ``EvaluationPeriods``) of those
  periods breach the threshold, OK otherwise: never INSUFFICIENT_DATA;
- a period without a datapoint does not breach (CloudWatch's default ``TreatMissingData``,
  ``missing``, here as ``notBreaching``) unless the alarm says ``breaching``;
- the state is set only when this evaluation's verdict changes (the first verdict is compared
  with the alarm's state in moto): a state set by hand (``set_alarm_state``, as tests do to fire
  an alarm) holds until the metrics change the verdict, where CloudWatch would set it back at
  its next evaluation;
- alarms on metric math, percentiles or anomaly bands are left alone (one warning each).

The statistic is read with ``get_metric_data``, which matches an alarm's dimensions exactly as
CloudWatch does; moto's ``get_metric_statistics`` also counts every datapoint with more
dimensions (a load balancer's total would then include its target groups' datapoints too).
"""

import logging
import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, Field, ValidationError

from activities.aws import aws_call, aws_client
from models.config import EnvironmentConfig

logger = logging.getLogger(__name__)

EVALUATE_INTERVAL = 1.0
"""Seconds between two evaluations: a bake polling every second sees a change at its next
poll or the one after."""
NAMES_PER_CALL = 100
"""DescribeAlarms takes at most 100 names per call."""

Comparison = Literal[
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
_COMPARISONS: dict[Comparison, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


class Dimension(BaseModel):
    Name: str
    Value: str


class MetricAlarm(BaseModel):
    """What ``describe_alarms`` says of a metric alarm, as far as its evaluation needs; an alarm
    this stand-in cannot evaluate does not validate."""

    name: str = Field(alias="AlarmName")
    namespace: str = Field(alias="Namespace")
    metric_name: str = Field(alias="MetricName")
    dimensions: list[Dimension] = Field(alias="Dimensions", default=[])
    statistic: Literal["SampleCount", "Average", "Sum", "Minimum", "Maximum"] = Field(
        alias="Statistic"
    )
    period: int = Field(alias="Period", gt=0)
    evaluation_periods: int = Field(alias="EvaluationPeriods", gt=0)
    datapoints_to_alarm: int | None = Field(alias="DatapointsToAlarm", default=None, gt=0)
    threshold: float = Field(alias="Threshold")
    comparison: Comparison = Field(alias="ComparisonOperator")
    treat_missing_data: str = Field(alias="TreatMissingData", default="missing")
    state: str = Field(alias="StateValue")


AlarmStateValue = Literal["OK", "ALARM"]


class Verdict(BaseModel):
    """What an evaluation concluded, and why, in the words of the alarm's StateReason."""

    state: AlarmStateValue
    reason: str


def verdict(alarm: MetricAlarm, values: Sequence[float | None]) -> Verdict:
    """The state ``alarm`` should be in, given its statistic in each of its last periods
    (oldest first; None for a period without a datapoint).

    >>> verdict(alarm, [23.0]).reason  # Sum > 10, one period of 60 s
    'Sum of HTTPCode_Target_5XX_Count over the last 1 period of 60 s: [23]; 1 greater than the threshold (10), 1 needed for ALARM'
    """
    compare, words = _COMPARISONS[alarm.comparison]
    missing_breaches = alarm.treat_missing_data == "breaching"
    breaching = sum(
        missing_breaches if value is None else compare(value, alarm.threshold) for value in values
    )
    needed = alarm.datapoints_to_alarm or alarm.evaluation_periods
    periods = f"{len(values)} period{'s' if len(values) != 1 else ''}"
    shown = ", ".join("no data" if value is None else f"{value:g}" for value in values)
    return Verdict(
        state="ALARM" if breaching >= needed else "OK",
        reason=(
            f"{alarm.statistic} of {alarm.metric_name} over the last {periods} of"
            f" {alarm.period} s: [{shown}]; {breaching} {words} the threshold"
            f" ({alarm.threshold:g}), {needed} needed for ALARM"
        ),
    )


class AlarmEvaluator:
    """Evaluates the named alarms of one region against the metrics in moto (see above)."""

    def __init__(self, region: str, alarm_names: Sequence[str]) -> None:
        self.region = region
        self.alarm_names = list(alarm_names)
        self._cloudwatch = aws_client("cloudwatch", region)
        self._verdicts: dict[str, AlarmStateValue] = {}
        self._left_alone: set[str] = set()

    @classmethod
    def for_environment(cls, config: EnvironmentConfig, region: str) -> Self | None:
        """The evaluator of the alarms ``region``'s bake watches; None when it watches none."""
        alarms = config.for_region(region).bake.alarms
        return cls(region, alarms) if alarms else None

    def evaluate(self) -> dict[str, Verdict]:
        """Evaluate every alarm once; the alarms whose state was set, with their verdict."""
        now = datetime.now(UTC)
        changed: dict[str, Verdict] = {}
        for alarm in self._alarms():
            found = verdict(alarm, self._values(alarm, now))
            if found.state == self._verdicts.get(alarm.name, alarm.state):
                self._verdicts[alarm.name] = found.state
                continue
            with aws_call("cloudwatch.SetAlarmState"):
                self._cloudwatch.set_alarm_state(
                    AlarmName=alarm.name, StateValue=found.state, StateReason=found.reason
                )
            # Only once set: a verdict whose setting failed is set by the next evaluation.
            self._verdicts[alarm.name] = found.state
            changed[alarm.name] = found
            logger.info("alarm %s (%s): %s: %s", alarm.name, self.region, found.state, found.reason)
        return changed

    def _alarms(self) -> list[MetricAlarm]:
        alarms: list[MetricAlarm] = []
        for start in range(0, len(self.alarm_names), NAMES_PER_CALL):
            names = self.alarm_names[start : start + NAMES_PER_CALL]
            with aws_call("cloudwatch.DescribeAlarms"):
                described = self._cloudwatch.describe_alarms(
                    AlarmNames=names, AlarmTypes=["MetricAlarm"]
                )["MetricAlarms"]
            for found in described:
                try:
                    alarms.append(MetricAlarm.model_validate(found))
                except ValidationError as err:
                    name = found.get("AlarmName", "?")
                    if name not in self._left_alone:
                        self._left_alone.add(name)
                        logger.warning("alarm %s: not evaluated locally: %s", name, err)
        return alarms

    def _values(self, alarm: MetricAlarm, now: datetime) -> list[float | None]:
        """The statistic in each of the alarm's last periods up to ``now``, oldest first."""
        # moto drops sub-seconds from the times asked: a second more keeps the newest datapoint.
        end = now.replace(microsecond=0) + timedelta(seconds=1)
        start = end - timedelta(seconds=alarm.period * alarm.evaluation_periods)
        with aws_call("cloudwatch.GetMetricData"):
            [result] = self._cloudwatch.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": "m",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": alarm.namespace,
                                "MetricName": alarm.metric_name,
                                "Dimensions": [
                                    {"Name": d.Name, "Value": d.Value} for d in alarm.dimensions
                                ],
                            },
                            "Period": alarm.period,
                            "Stat": alarm.statistic,
                        },
                    }
                ],
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )["MetricDataResults"]
        values: list[float | None] = [None] * alarm.evaluation_periods
        for timestamp, value in zip(result["Timestamps"], result["Values"], strict=True):
            index = int((timestamp - start).total_seconds() // alarm.period)
            if 0 <= index < alarm.evaluation_periods:
                values[index] = value
        return values
