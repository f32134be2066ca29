"""CloudWatch alarms watched during the bake: any in ALARM rolls the deployment back."""

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws import aws_call, aws_client
from models.activities import AlarmsInput
from models.observations import AlarmState

# DescribeAlarms takes at most 100 names per call.
_NAMES_PER_CALL = 100


@activity.defn
def read_alarm_states(arg: AlarmsInput) -> list[AlarmState]:
    """The state of each named alarm, in the order given.

    An alarm that does not exist is a non-retryable ``AlarmNotFound``: a bake must not pass
    because nobody is watching.
    """
    client = aws_client("cloudwatch", arg.region)
    found: dict[str, AlarmState] = {}
    for start in range(0, len(arg.alarm_names), _NAMES_PER_CALL):
        names = arg.alarm_names[start : start + _NAMES_PER_CALL]
        with aws_call("cloudwatch.DescribeAlarms"):
            pages = client.get_paginator("describe_alarms").paginate(
                AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for page in pages:
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    found[alarm["AlarmName"]] = AlarmState(
                        name=alarm["AlarmName"],
                        state=alarm["StateValue"],
                        reason=alarm.get("StateReason", ""),
                        updated_at=alarm.get("StateUpdatedTimestamp"),
                    )
    missing = [name for name in arg.alarm_names if name not in found]
    if missing:
        raise ApplicationError(
            f"cloudwatch: no alarm named {', '.join(missing)} in {arg.region}",
            type="AlarmNotFound",
            non_retryable=True,
        )
    return [found[name] for name in arg.alarm_names]
