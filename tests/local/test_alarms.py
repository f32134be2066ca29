"""The local stand-in for CloudWatch's alarm evaluation: alarm states set from the metrics."""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from local.data_plane.alarms import AlarmEvaluator, MetricAlarm, verdict
from local.data_plane.cloudwatch_metrics import NAMESPACE, TARGET_5XX, AlbMetricsPublisher
from local.data_plane.haproxy import Haproxy, backend_name
from local.processes import wait_until
from tests.activities.aws_resources import REGION, Alb, unique
from tests.factories import environment
from tests.local.data_plane import Backend, listener_load_balancer, split

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

PERIOD = 10
"""The test alarm's period in seconds: short, so that it goes back to OK within the test."""
THRESHOLD = 5


def alarm(**overrides: Any) -> MetricAlarm:
    """The demo's 5xx alarm, as describe_alarms answers for it, with ``overrides`` (its keys)."""
    described = {
        "AlarmName": "game-prod-5xx",
        "Namespace": NAMESPACE,
        "MetricName": TARGET_5XX,
        "Dimensions": [{"Name": "LoadBalancer", "Value": "app/game-prod/1"}],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "StateValue": "OK",
    }
    return MetricAlarm.model_validate(described | overrides)


# --- verdict: pure -------------------------------------------------------------------------------


def test_alarm_when_the_threshold_is_breached_and_the_reason_gives_the_numbers() -> None:
    found = verdict(alarm(), [23.0])

    assert found.state == "ALARM"
    assert found.reason == (
        "Sum of HTTPCode_Target_5XX_Count over the last 1 period of 60 s: [23]; 1 greater than"
        " the threshold (10), 1 needed for ALARM"
    )
    assert verdict(alarm(), [10.0]).state == "OK"  # greater than, not equal
    assert verdict(alarm(ComparisonOperator="GreaterThanOrEqualToThreshold"), [10.0]).state == (
        "ALARM"
    )
    assert verdict(alarm(ComparisonOperator="LessThanThreshold", Threshold=1), [0.0]).state == (
        "ALARM"
    )


@pytest.mark.parametrize(
    ("overrides", "values", "state"),
    [
        ({"EvaluationPeriods": 3}, [11.0, 12.0, 13.0], "ALARM"),
        ({"EvaluationPeriods": 3}, [11.0, 2.0, 13.0], "OK"),
        ({"EvaluationPeriods": 3, "DatapointsToAlarm": 2}, [11.0, 2.0, 13.0], "ALARM"),
        ({"EvaluationPeriods": 2}, [11.0, None], "OK"),
        ({"EvaluationPeriods": 2, "TreatMissingData": "breaching"}, [11.0, None], "ALARM"),
        ({}, [None], "OK"),
    ],
    ids=[
        "every period",
        "not every period",
        "M of N",
        "missing data does not breach",
        "unless the alarm says so",
        "no data at all",
    ],
)
def test_alarm_only_when_enough_periods_breach(
    overrides: dict[str, Any], values: Sequence[float | None], state: str
) -> None:
    assert verdict(alarm(**overrides), values).state == state


def test_the_evaluator_watches_the_bakes_alarms_of_its_region() -> None:
    config = environment(
        regions=["us-west-2", "us-east-1"],
        bake={"duration": "1m", "alarms": ["west-5xx"]},
        in_region={"us-east-1": {"bake": {"alarms": ["east-5xx", "east-latency"]}}},
    )

    west = AlarmEvaluator.for_environment(config, "us-west-2")
    east = AlarmEvaluator.for_environment(config, "us-east-1")

    assert west is not None and west.alarm_names == ["west-5xx"]
    assert east is not None and east.alarm_names == ["east-5xx", "east-latency"]
    assert AlarmEvaluator.for_environment(environment(), "us-west-2") is None  # no bake alarms


# --- against moto, from HAProxy's counters ---------------------------------------------------------


def five_xx_alarm(cloudwatch: "CloudWatchClient", alb: Alb) -> str:
    """A new alarm, as the demo's, on the load balancer's 5xx over PERIOD above THRESHOLD."""
    name = unique("game-5xx")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=NAMESPACE,
        MetricName=TARGET_5XX,
        Dimensions=[{"Name": "LoadBalancer", "Value": listener_load_balancer(alb)}],
        Statistic="Sum",
        Period=PERIOD,
        EvaluationPeriods=1,
        Threshold=THRESHOLD,
        ComparisonOperator="GreaterThanThreshold",
    )
    return name


def state_of(cloudwatch: "CloudWatchClient", name: str) -> tuple[str, str]:
    [found] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return found["StateValue"], found.get("StateReason", "")


def test_an_alarm_on_5xx_fires_when_a_backend_fails_and_clears_when_it_stops(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    cloudwatch: "CloudWatchClient",
) -> None:
    green = backends("green")
    haproxy.api.add_server(
        backend_name(REGION), f"green-{green.port}-1", green.address, green.port, 1
    )
    publisher = AlbMetricsPublisher(
        REGION, haproxy.api, listener_arn=alb.listener_arn, target_group_arns=alb.target_groups
    )
    name = five_xx_alarm(cloudwatch, alb)
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test start")
    evaluator = AlarmEvaluator(REGION, [name])

    def cycle() -> tuple[str, str]:
        """What the data plane's loops do, once each: publish, then evaluate."""
        publisher.publish()
        evaluator.evaluate()
        return state_of(cloudwatch, name)

    # At the threshold, not above: nothing changes.
    split(haproxy, THRESHOLD, "/fail")
    assert cycle() == ("OK", "test start")

    split(haproxy, 3, "/fail")
    assert cycle()[0] == "ALARM"
    assert state_of(cloudwatch, name)[1] == (
        f"Sum of {TARGET_5XX} over the last 1 period of {PERIOD} s: [8]; 1 greater than the"
        f" threshold ({THRESHOLD}), 1 needed for ALARM"
    )

    # Requests answered well from now on: OK once the failures are older than the period.
    split(haproxy, 20)
    wait_until(lambda: cycle()[0] == "OK", PERIOD + 10, "the alarm back in OK")
    assert "[no data]; 0 greater than" in state_of(cloudwatch, name)[1]


def test_a_state_set_by_hand_holds_until_the_verdict_changes(
    alb: Alb, cloudwatch: "CloudWatchClient"
) -> None:
    name = five_xx_alarm(cloudwatch, alb)
    evaluator = AlarmEvaluator(REGION, [name])
    assert evaluator.evaluate() == {}  # OK, as moto created it, and no 5xx: nothing to change

    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="fired by hand")
    assert evaluator.evaluate() == {}

    assert state_of(cloudwatch, name) == ("ALARM", "fired by hand")


def test_an_alarm_it_cannot_evaluate_is_left_alone(cloudwatch: "CloudWatchClient") -> None:
    name = unique("game-p99")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=NAMESPACE,
        MetricName="TargetResponseTime",
        ExtendedStatistic="p99",
        Period=PERIOD,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="new")

    assert AlarmEvaluator(REGION, [name, unique("no-such-alarm")]).evaluate() == {}
    assert state_of(cloudwatch, name) == ("INSUFFICIENT_DATA", "new")
