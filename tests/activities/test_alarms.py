"""CloudWatch alarms against moto: the states the bake watches, by name, in the order given."""

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.alarms import read_alarm_states
from activities.aws import aws_client
from models.activities import AlarmsInput
from models.observations import AlarmState
from tests.activities.aws_resources import REGION, unique

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StateValueType


@pytest.fixture
def cloudwatch(aws: dict[str, str]) -> "CloudWatchClient":
    return boto3.client("cloudwatch", region_name=REGION)


def alarm(
    cloudwatch: "CloudWatchClient",
    state: "StateValueType | None" = None,
    reason: str = "",
    name: str | None = None,
) -> str:
    """A 5xx alarm (in ``state`` with ``reason``, where given); its name."""
    name = name or unique("game-5xx")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    if state is not None:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    return name


def read(env: ActivityEnvironment, *names: str) -> list[AlarmState]:
    return env.run(read_alarm_states, AlarmsInput(region=REGION, alarm_names=list(names)))


@pytest.fixture
def describe_requests(aws: dict[str, str]) -> Iterator[list[list[str]]]:
    """The AlarmNames of every DescribeAlarms request the activity's client sends."""
    seen: list[list[str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(list(params.get("AlarmNames", [])))

    events = aws_client("cloudwatch", REGION).meta.events
    event = "provide-client-params.cloudwatch.DescribeAlarms"
    events.register(event, record)
    try:
        yield seen
    finally:
        events.unregister(event, record)


def test_reads_each_state_with_its_reason(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient"
) -> None:
    ok = alarm(cloudwatch, "OK", "all quiet")
    firing = alarm(cloudwatch, "ALARM", "5xx above 10")
    unknown = alarm(cloudwatch, "INSUFFICIENT_DATA", "no datapoints")

    states = read(env, ok, firing, unknown)

    assert [(s.name, s.state, s.reason) for s in states] == [
        (ok, "OK", "all quiet"),
        (firing, "ALARM", "5xx above 10"),
        (unknown, "INSUFFICIENT_DATA", "no datapoints"),
    ]
    assert all(s.updated_at is not None for s in states)


def test_follows_a_state_change(env: ActivityEnvironment, cloudwatch: "CloudWatchClient") -> None:
    name = alarm(cloudwatch, "OK", "all quiet")
    assert [s.state for s in read(env, name)] == ["OK"]

    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="5xx above 10")

    assert [(s.state, s.reason) for s in read(env, name)] == [("ALARM", "5xx above 10")]


def test_keeps_the_order_given(env: ActivityEnvironment, cloudwatch: "CloudWatchClient") -> None:
    # Names that DescribeAlarms would list in another (alphabetical) order.
    names = [alarm(cloudwatch, "OK", name=f"{prefix}-{unique('5xx')}") for prefix in "zay"]

    assert [s.name for s in read(env, *names)] == names
    assert [s.name for s in read(env, *reversed(names))] == names[::-1]


def test_a_missing_alarm_is_not_retried_and_is_named(
    env: ActivityEnvironment, cloudwatch: "CloudWatchClient"
) -> None:
    present = alarm(cloudwatch, "OK")
    missing = unique("no-such-alarm")

    with pytest.raises(ApplicationError) as caught:
        read(env, present, missing)

    assert caught.value.type == "AlarmNotFound"
    assert caught.value.non_retryable
    assert missing in caught.value.message
    assert present not in caught.value.message
    assert REGION in caught.value.message


def test_more_than_100_names_are_read_in_batches_of_100(
    env: ActivityEnvironment,
    cloudwatch: "CloudWatchClient",
    describe_requests: list[list[str]],
) -> None:
    base = unique("batch")
    names = [
        alarm(cloudwatch, "ALARM" if i % 50 == 0 else "OK", f"reason {i}", name=f"{base}-{i:03}")
        for i in range(230)
    ]

    states = read(env, *names)

    assert [s.name for s in states] == names
    assert [s.reason for s in states] == [f"reason {i}" for i in range(230)]
    assert [s.name for s in states if s.state == "ALARM"] == names[::50]
    assert [len(request) for request in describe_requests] == [100, 100, 30]
    assert [name for request in describe_requests for name in request] == names
