"""The local ALB's CloudWatch metrics: HAProxy's counters in moto's CloudWatch."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from local.data_plane.cloudwatch_metrics import (
    NAMESPACE,
    REQUEST_COUNT,
    TARGET_5XX,
    AlbMetricsPublisher,
    arn_resource,
    load_balancer_dimension,
    target_group_dimension,
)
from local.data_plane.haproxy import Haproxy, backend_name
from models.colors import COLORS, Color
from tests.activities.aws_resources import REGION, Alb
from tests.factories import ENVIRONMENT, environment
from tests.local.data_plane import Backend, listener_load_balancer, split

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef

WINDOW = timedelta(minutes=10)
"""Further back than any test here runs: every datapoint a test published is inside."""


def test_the_dimensions_are_an_albs() -> None:
    lb = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/game-prod/50dc6c495c0c9188"
    tg = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/game-prod-blue/73e2d6bc24d8a067"

    assert load_balancer_dimension(lb) == "app/game-prod/50dc6c495c0c9188"
    assert target_group_dimension(tg) == "targetgroup/game-prod-blue/73e2d6bc24d8a067"
    with pytest.raises(ValueError, match="not an ARN"):
        arn_resource("targetgroup/game-prod-blue/73e2d6bc24d8a067")


def test_an_app_mesh_router_has_no_alb_to_publish_for(haproxy: Haproxy) -> None:
    mesh = {"kind": "app_mesh", "mesh_name": "m", "virtual_router_name": "r", "route_name": "r"}
    config = environment(
        router=mesh,
        blue={**ENVIRONMENT["blue"], "virtual_node": "game-blue"},
        green={**ENVIRONMENT["green"], "virtual_node": "game-green"},
    )

    assert AlbMetricsPublisher.for_environment(config, REGION, haproxy.api) is None


def published(
    cloudwatch: "CloudWatchClient", metric: str, dimensions: Sequence["DimensionTypeDef"]
) -> float:
    """The sum of the datapoints of ``metric`` with exactly these dimensions (get_metric_data:
    moto's get_metric_statistics would also count those with more dimensions)."""
    end = datetime.now(UTC) + timedelta(seconds=1)
    [result] = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": metric,
                        "Dimensions": list(dimensions),
                    },
                    "Period": int(WINDOW.total_seconds()),
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=end - WINDOW,
        EndTime=end,
    )["MetricDataResults"]
    return sum(result["Values"])


def test_a_colors_requests_and_5xx_reach_cloudwatch_with_an_albs_dimensions(
    haproxy: Haproxy,
    backends: Callable[[str], Backend],
    alb: Alb,
    cloudwatch: "CloudWatchClient",
) -> None:
    # Both colors' servers in HAProxy, as the follower names them; green weighs three times
    # blue, so that round robin sends them 3 requests out of 4.
    for number, (color, weight) in enumerate((("blue", 64), ("green", 192)), start=1):
        backend = backends(color)
        name = f"{color}-{backend.port}-{number}"
        haproxy.api.add_server(backend_name(REGION), name, backend.address, backend.port, weight)
    publisher = AlbMetricsPublisher(
        REGION, haproxy.api, listener_arn=alb.listener_arn, target_group_arns=alb.target_groups
    )
    assert publisher.publish() == []  # nothing counted yet, nothing published

    answered = split(haproxy, 40) + split(haproxy, 8, "/fail")
    sent = publisher.publish()

    assert answered == {"blue": 10, "green": 30, "HTTP 500": 8}
    load_balancer: list[DimensionTypeDef] = [
        {"Name": "LoadBalancer", "Value": listener_load_balancer(alb)}
    ]
    expected: dict[Color, tuple[int, int]] = {"blue": (12, 2), "green": (36, 6)}
    for color in COLORS:
        target_group: list[DimensionTypeDef] = [
            {"Name": "TargetGroup", "Value": target_group_dimension(alb.target_groups[color])},
            *load_balancer,
        ]
        requests, errors = expected[color]
        assert published(cloudwatch, REQUEST_COUNT, target_group) == requests
        assert published(cloudwatch, TARGET_5XX, target_group) == errors
        # get_metric_statistics, asked with both of a target group's dimensions, agrees.
        stats = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=REQUEST_COUNT,
            Dimensions=target_group,
            StartTime=datetime.now(UTC) - WINDOW,
            EndTime=datetime.now(UTC) + timedelta(seconds=1),
            Period=int(WINDOW.total_seconds()),
            Statistics=["Sum"],
        )["Datapoints"]
        assert sum(point.get("Sum", 0) for point in stats) == requests
    # The load balancer's own totals, which an alarm on the whole ALB watches.
    assert published(cloudwatch, REQUEST_COUNT, load_balancer) == 48
    assert published(cloudwatch, TARGET_5XX, load_balancer) == 8
    assert {d["Unit"] for d in sent} == {"Count"}

    # Each publish puts what was counted since the one before: 4 more requests, 4 more.
    split(haproxy, 4)
    more = publisher.publish()
    assert sorted((d["MetricName"], len(d["Dimensions"]), d["Value"]) for d in more) == [
        (REQUEST_COUNT, 1, 4.0),  # the load balancer
        (REQUEST_COUNT, 2, 1.0),  # blue
        (REQUEST_COUNT, 2, 3.0),  # green
    ]
    assert published(cloudwatch, REQUEST_COUNT, load_balancer) == 52


def test_requests_no_server_took_count_for_the_load_balancer_alone(
    haproxy: Haproxy, alb: Alb, cloudwatch: "CloudWatchClient"
) -> None:
    """HAProxy's own 503 (no server) is the load balancer's error, not a target's."""
    publisher = AlbMetricsPublisher(
        REGION, haproxy.api, listener_arn=alb.listener_arn, target_group_arns=alb.target_groups
    )

    assert split(haproxy, 3) == {"HTTP 503": 3}
    sent = publisher.publish()

    assert [(d["MetricName"], d["Value"]) for d in sent] == [(REQUEST_COUNT, 3.0)]
    load_balancer: list[DimensionTypeDef] = [
        {"Name": "LoadBalancer", "Value": listener_load_balancer(alb)}
    ]
    assert published(cloudwatch, REQUEST_COUNT, load_balancer) == 3
    assert published(cloudwatch, TARGET_5XX, load_balancer) == 0
