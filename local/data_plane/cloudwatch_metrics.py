"""The local ALB's CloudWatch metrics: HAProxy's counters published to moto's CloudWatch.

An ALB publishes, per minute, how many requests it got and how many its targets answered with
a 5xx, per load balancer and per target group; alarms (the bake's) watch them. moto stores
metrics but has no load balancer to count anything. ``AlbMetricsPublisher.publish``, run every
PUBLISH_INTERVAL seconds per region, reads the region's HAProxy counters (``show stat``, a color
being its servers, retired ones included) and puts what they counted since its last publish
into namespace ``AWS/ApplicationELB``:

- ``RequestCount`` and ``HTTPCode_Target_5XX_Count`` per color, with the dimensions an ALB gives
  a target group's metrics: ``TargetGroup`` (``targetgroup/<name>/<id>``) and ``LoadBalancer``
  (``app/<name>/<id>``);
- the same per load balancer (dimension ``LoadBalancer`` alone): the requests of the region's
  whole backend (also those no server took), the 5xx of both colors' servers. A 503 HAProxy
  makes itself when no server answers is the load balancer's error, not a target's
  (``HTTPCode_ELB_5XX_Count`` on an ALB): it is in neither 5xx count.

As on an ALB, a period without requests gets no datapoint, rather than a 0: moto keeps every
datapoint for good and scans them all on each read.

The load balancer is the one of the router's listener (described once in moto); an App Mesh
router has none, and its region publishes nothing.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

from activities.aws import aws_call, aws_client
from local.data_plane.haproxy import RuntimeApi
from local.data_plane.load_balancer import TrafficCounters, region_traffic
from models.colors import COLORS, Color
from models.config import EnvironmentConfig

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDatumTypeDef

PUBLISH_INTERVAL = 5.0
"""Seconds between two publishes: an ALB's 60 s would leave a short alarm period empty."""
NAMESPACE = "AWS/ApplicationELB"
REQUEST_COUNT = "RequestCount"
TARGET_5XX = "HTTPCode_Target_5XX_Count"
TOTAL = "total"
"""The load balancer's own figures, beside each color's."""


def arn_resource(arn: str) -> str:
    """What follows the account in an ARN: ``targetgroup/game-blue/73e2d6bc24d8a067``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[5]


def load_balancer_dimension(load_balancer_arn: str) -> str:
    """The ``LoadBalancer`` dimension of an ALB's metrics: ``app/<name>/<id>``."""
    return arn_resource(load_balancer_arn).removeprefix("loadbalancer/")


def target_group_dimension(target_group_arn: str) -> str:
    """The ``TargetGroup`` dimension of an ALB's metrics: ``targetgroup/<name>/<id>``."""
    return arn_resource(target_group_arn)


def load_balancer_of(region: str, listener_arn: str) -> str:
    """The ARN of the load balancer the listener belongs to, as moto describes it."""
    elbv2 = aws_client("elbv2", region)
    with aws_call("elbv2.DescribeListeners"):
        [listener] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    return listener["LoadBalancerArn"]


def _increase(now: int, before: int) -> int:
    """What a counter counted between two reads; all of ``now`` after it restarted from 0."""
    return now - before if now >= before else now


class AlbMetricsPublisher:
    """Publishes one region's ALB metrics from its HAProxy backend's counters (see above)."""

    def __init__(
        self,
        region: str,
        api: RuntimeApi,
        *,
        listener_arn: str,
        target_group_arns: dict[Color, str],
        backend: str | None = None,
    ) -> None:
        self.region = region
        self._api = api
        self._backend = backend
        self._listener_arn = listener_arn
        self._target_groups = {c: target_group_dimension(target_group_arns[c]) for c in COLORS}
        self._load_balancer: str | None = None
        """Described at the first publish: moto may not answer yet when this is made."""
        self._cloudwatch = aws_client("cloudwatch", region)
        self._published: dict[str, TrafficCounters] = {}
        """What the last publish read, by color and TOTAL; at first nothing: HAProxy's counters
        count from its start, and the data plane starts its HAProxy with its publishers."""

    @classmethod
    def for_environment(
        cls, config: EnvironmentConfig, region: str, api: RuntimeApi
    ) -> Self | None:
        """The publisher of ``region`` of a deploy.toml environment; None with an App Mesh
        router or a color without a target group: there is no ALB to stand in for."""
        regional = config.for_region(region)
        arns = {c: regional.color(c).target_group_arn for c in COLORS}
        if regional.router.kind != "alb" or None in arns.values():
            return None
        return cls(
            region,
            api,
            listener_arn=regional.router.listener_arn,
            target_group_arns={c: str(arn) for c, arn in arns.items()},
        )

    def publish(self) -> list["MetricDatumTypeDef"]:
        """Read the counters, put their increase since the last publish; the datapoints put."""
        if self._load_balancer is None:
            arn = load_balancer_of(self.region, self._listener_arn)
            self._load_balancer = load_balancer_dimension(arn)
        load_balancer: list[DimensionTypeDef] = [
            {"Name": "LoadBalancer", "Value": self._load_balancer}
        ]
        traffic = region_traffic(self._api, self.region, self._backend)
        total = traffic.total.model_copy(
            update={"responses_5xx": sum(traffic.colors[c].responses_5xx for c in COLORS)}
        )
        read: dict[str, tuple[list[DimensionTypeDef], TrafficCounters]] = {
            color: (
                [{"Name": "TargetGroup", "Value": self._target_groups[color]}, *load_balancer],
                traffic.colors[color],
            )
            for color in COLORS
        }
        read[TOTAL] = (load_balancer, total)
        now = datetime.now(UTC)
        data: list[MetricDatumTypeDef] = []
        for key, (dimensions, counters) in read.items():
            before = self._published.get(key, TrafficCounters())
            for name, value in (
                (REQUEST_COUNT, _increase(counters.requests, before.requests)),
                (TARGET_5XX, _increase(counters.responses_5xx, before.responses_5xx)),
            ):
                if value > 0:
                    data.append(
                        {
                            "MetricName": name,
                            "Dimensions": dimensions,
                            "Value": float(value),
                            "Unit": "Count",
                            "Timestamp": now,
                        }
                    )
        if data:
            with aws_call("cloudwatch.PutMetricData"):
                self._cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
        # Only once put: what a failed publish read is counted by the next one.
        self._published = {key: counters for key, (_, counters) in read.items()}
        return data
