"""App Mesh router: the weights of the two colors' virtual nodes in one route.

Only the weights of the route action change; matches, retry policies, timeouts and the
priority are written back as they were read.
"""

import copy
from typing import TYPE_CHECKING, Any, cast

from temporalio.exceptions import ApplicationError

from activities.aws import aws_call, aws_client
from activities.routers.base import all_to, color_weights
from models.colors import COLORS, Color
from models.config import AppMeshRouter
from models.observations import RouterWeights

if TYPE_CHECKING:
    from mypy_boto3_appmesh.type_defs import RouteSpecTypeDef

ROUTE_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
"""The keys of a route spec that carry an action with weighted targets."""

Spec = dict[str, Any]


class AppMeshRouteRouter:
    """Weighted targets of one App Mesh route: the blue and green virtual nodes."""

    def __init__(self, region: str, config: AppMeshRouter, virtual_nodes: dict[Color, str]) -> None:
        self._appmesh = aws_client("appmesh", region)
        self._config = config
        self._virtual_nodes = virtual_nodes
        self._where = f"route {config.mesh_name}/{config.virtual_router_name}/{config.route_name}"

    def weights(self) -> RouterWeights:
        return self._weights(self._read())

    def send_all_to(self, color: Color) -> RouterWeights:
        return self.set_weights(all_to(color))

    def set_weights(self, wanted: RouterWeights) -> RouterWeights:
        spec = self._read()
        if self._weights(spec) == wanted:
            return wanted
        weight_of = {self._virtual_nodes[c]: getattr(wanted, c) for c in COLORS}
        for target in self._weighted_targets(spec):
            if target.get("virtualNode") in weight_of:
                target["weight"] = weight_of[target["virtualNode"]]
        with aws_call("appmesh.UpdateRoute"):
            answer = self._appmesh.update_route(
                meshName=self._config.mesh_name,
                virtualRouterName=self._config.virtual_router_name,
                routeName=self._config.route_name,
                spec=cast("RouteSpecTypeDef", spec),
            )
        return self._weights(cast(Spec, answer["route"]["spec"]))

    def _read(self) -> Spec:
        with aws_call("appmesh.DescribeRoute"):
            answer = self._appmesh.describe_route(
                meshName=self._config.mesh_name,
                virtualRouterName=self._config.virtual_router_name,
                routeName=self._config.route_name,
            )
        return copy.deepcopy(cast(Spec, answer["route"]["spec"]))

    def _weighted_targets(self, spec: Spec) -> list[dict[str, Any]]:
        for kind in ROUTE_KINDS:
            if kind in spec:
                targets: list[dict[str, Any]] = spec[kind]["action"]["weightedTargets"]
                return targets
        raise ApplicationError(
            f"{self._where} has none of {', '.join(ROUTE_KINDS)}",
            type="RouterMismatch",
            non_retryable=True,
        )

    def _weights(self, spec: Spec) -> RouterWeights:
        targets = [
            (str(t.get("virtualNode")), int(t["weight"])) for t in self._weighted_targets(spec)
        ]
        return color_weights(targets, self._virtual_nodes, self._where)
