"""The local ALB: HAProxy following what moto says about one region's router and target groups.

moto is the control plane: the deployment writes the colors' weights there (the listener's
forward action, or an App Mesh route) and the task launcher registers each color's tasks as
targets of its target group. ``LoadBalancerFollower.sync`` makes the region's HAProxy backend
match, like the ALB's data plane would:

- a server per registered target (``blue-<port>-<n>``: ``n`` counts up per backend, so a name
  never names another task), taking new requests at once;
- weights such that each color's share of new requests is its router weight's share, however
  many tasks it has (``haproxy.server_weights``);
- a target that left its target group is set to ``drain`` at once: no new requests, those in
  progress (a WebSocket game) go on, as on an ALB deregistration. Once it has no sessions left
  it goes to ``maint`` and stays there, never deleted: its counters (requests, connection
  errors, retries) must stay readable for the final measurement, which sums them per color.
  The cost is a line per task ever started in ``show stat``: a few hundred at most locally.

Nothing here is product code: activities and workflows never talk to HAProxy.
"""

import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple, Self

from pydantic import BaseModel

from activities.aws import aws_call, aws_client
from activities.routers import Router, router_for
from local.data_plane.haproxy import (
    RuntimeApi,
    ServerState,
    StatRow,
    backend_name,
    server_weights,
)
from local.data_plane.looping import keep_running
from models.activities import RouterInput
from models.colors import COLORS, Color
from models.config import ColorConfig, EnvironmentConfig

logger = logging.getLogger(__name__)

NOT_SERVING = frozenset({"draining", "unused", "unavailable"})
"""Target health states of a target that is leaving its group or was never in it. moto reports
every registered target healthy; HAProxy runs no health checks (the launcher registers a task
once it is healthy, and retries with redispatch hide a dead one, which the counters show)."""

_NAME = re.compile(r"^(blue|green)-(\d+)-(\d+)$")


class Target(NamedTuple):
    """A registered target: an ALB's IP target is an address and a port."""

    address: str
    port: int


def server_name(color: Color, target: Target, number: int) -> str:
    """``blue-9001-3``: the color, the target's port and a number never used before."""
    return f"{color}-{target.port}-{number}"


def parse_server_name(name: str) -> tuple[Color, int] | None:
    """(color, number) of a name ``server_name`` made; None for any other server."""
    found = _NAME.match(name)
    if not found:
        return None
    color: Color = "blue" if found[1] == "blue" else "green"
    return color, int(found[3])


class LoadBalancerFollower:
    """Keeps one region's HAProxy backend on its router's weights and targets in moto.

    ``router`` names the router (ALB listener or rule, or App Mesh route) and both colors, each
    with the target group where its tasks are registered (and its virtual node with App Mesh).
    Weights are read on every ``sync``; targets every ``targets_interval`` seconds, since
    target registration moves slower than a switch and each read costs moto CPU.
    """

    def __init__(
        self,
        router: RouterInput,
        api: RuntimeApi,
        backend: str | None = None,
        *,
        targets_interval: float = 0.3,
    ) -> None:
        missing = [c for c in COLORS if not _color(router, c).target_group_arn]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)}: target_group_arn is needed: HAProxy's servers are "
                "the targets registered there"
            )
        self.region = router.region
        self.backend = backend or backend_name(router.region)
        self.targets_interval = targets_interval
        self._api = api
        self._router: Router = router_for(router)
        self._elbv2 = aws_client("elbv2", router.region)
        self._target_groups = {c: str(_color(router, c).target_group_arn) for c in COLORS}
        self._targets: dict[Color, set[Target]] | None = None
        self._targets_read_at = 0.0
        self._last_number = 0

    @classmethod
    def for_environment(
        cls,
        config: EnvironmentConfig,
        region: str,
        api: RuntimeApi,
        *,
        targets_interval: float = 0.3,
    ) -> Self:
        """The follower of ``region`` of a deploy.toml environment, on backend tasks-<region>."""
        regional = config.for_region(region)
        router = RouterInput(
            region=region, router=regional.router, blue=regional.blue, green=regional.green
        )
        return cls(router, api, targets_interval=targets_interval)

    def sync(self) -> list[str]:
        """One reconcile: read moto, then change HAProxy where it differs; what changed."""
        weights = self._router.weights()
        now = time.monotonic()
        if self._targets is None or now - self._targets_read_at >= self.targets_interval:
            self._targets = {c: self._registered(c) for c in COLORS}
            self._targets_read_at = now
        return self._apply({"blue": weights.blue, "green": weights.green}, self._targets)

    def run(self, stop: threading.Event, interval: float = 0.1) -> None:
        """``sync`` every ``interval`` seconds until ``stop`` is set (``keep_running``)."""
        keep_running(self.sync, stop, interval, self.backend)

    def _registered(self, color: Color) -> set[Target]:
        with aws_call("elbv2.DescribeTargetHealth"):
            described = self._elbv2.describe_target_health(
                TargetGroupArn=self._target_groups[color]
            )["TargetHealthDescriptions"]
        return {
            Target(d["Target"]["Id"], d["Target"].get("Port", 0))
            for d in described
            if d.get("TargetHealth", {}).get("State") not in NOT_SERVING
        }

    def _apply(self, shares: dict[Color, int], targets: dict[Color, set[Target]]) -> list[str]:
        servers = self._api.servers(self.backend)
        ours = {s.name: parsed for s in servers if (parsed := parse_server_name(s.name))}
        self._last_number = max([self._last_number, *(n for _, n in ours.values())])
        # Each registered target's server (ready or draining; the newest if several), and the
        # servers whose target left, to drain or retire. Retired ones (maint) stay as they are.
        serving: dict[Color, dict[Target, ServerState]] = {c: {} for c in COLORS}
        leaving: list[ServerState] = []
        newest_first = sorted(
            (s for s in servers if s.name in ours and s.admin_state != "maint"),
            key=lambda s: ours[s.name][1],
            reverse=True,
        )
        for server in newest_first:
            color = ours[server.name][0]
            target = Target(server.address, server.port)
            if target in targets[color] and target not in serving[color]:
                serving[color][target] = server
            else:
                leaving.append(server)
        weight_of = server_weights(shares, {c: len(targets[c]) for c in COLORS})

        changes: list[str] = []

        def changed(what: str) -> None:
            changes.append(what)
            logger.info("%s: %s", self.backend, what)

        # What adds capacity first, then what takes it away: a switch never passes through a
        # moment where no server takes new requests.
        for color in COLORS:
            for target in sorted(targets[color] - serving[color].keys()):
                self._last_number += 1
                name = server_name(color, target, self._last_number)
                weight = weight_of[color]
                self._api.add_server(self.backend, name, target.address, target.port, weight)
                changed(f"add {name} {target.address}:{target.port} weight {weight}")
        lower: list[tuple[ServerState, int]] = []
        for color in COLORS:
            for server in serving[color].values():
                wanted = weight_of[color]
                if server.weight > wanted and server.admin_state == "ready":
                    lower.append((server, wanted))
                    continue
                if server.weight != wanted:
                    self._api.set_weight(self.backend, server.name, wanted)
                    changed(f"weight {server.name} {server.weight}→{wanted}")
                if server.admin_state == "drain":  # registered again before it was retired
                    self._api.set_state(self.backend, server.name, "ready")
                    changed(f"ready {server.name}")
        for server, wanted in lower:
            self._api.set_weight(self.backend, server.name, wanted)
            changed(f"weight {server.name} {server.weight}→{wanted}")

        for server in leaving:
            if server.admin_state == "ready":
                self._api.set_state(self.backend, server.name, "drain")
                changed(f"drain {server.name}")
        draining = {s.name for s in leaving if s.admin_state == "drain"}
        if draining:
            # Those that were draining before this sync: a draining server gets no new
            # sessions, so once it has none left, none will come.
            for row in self._api.stats(self.backend):
                if row.svname in draining and row.scur == 0:
                    self._api.set_state(self.backend, row.svname, "maint")
                    changed(f"retire {row.svname}")
        return changes


def _color(router: RouterInput, color: Color) -> ColorConfig:
    return router.blue if color == "blue" else router.green


class TrafficCounters(BaseModel):
    """Counters of a color's servers summed, or of a whole backend (``show stat``)."""

    sessions: int = 0
    """Requests and WebSockets sent to servers (stot)."""
    requests: int = 0
    """HTTP requests (req_tot)."""
    current: int = 0
    """Sessions in progress now (scur)."""
    econ: int = 0
    """Requests that failed to connect in the end (a backend's: also those with no server)."""
    eresp: int = 0
    """Responses cut off: a server closed or reset while answering."""
    wretr: int = 0
    """Connection attempts retried."""
    wredis: int = 0
    """Retries redispatched to another server."""
    responses_5xx: int = 0

    def since(self, before: "TrafficCounters") -> "TrafficCounters":
        """What was counted after ``before`` (the same counters, read earlier)."""
        return TrafficCounters(
            **{name: value - getattr(before, name) for name, value in self.model_dump().items()}
        )

    @classmethod
    def of(cls, rows: Iterable[StatRow]) -> Self:
        counters = cls()
        for row in rows:
            counters.sessions += row.stot
            counters.requests += row.req_tot
            counters.current += row.scur
            counters.econ += row.econ
            counters.eresp += row.eresp
            counters.wretr += row.wretr
            counters.wredis += row.wredis
            counters.responses_5xx += row.hrsp_5xx
        return counters


class RegionTraffic(BaseModel):
    """One region's traffic so far: per color (its servers, retired ones included) and total."""

    region: str
    colors: dict[Color, TrafficCounters]
    total: TrafficCounters
    """The backend's own counters: also the requests that found no server at all."""


def region_traffic(api: RuntimeApi, region: str, backend: str | None = None) -> RegionTraffic:
    """The counters of ``region``'s backend, per color and in total, from ``show stat``."""
    rows = api.stats(backend or backend_name(region))
    by_color: dict[Color, list[StatRow]] = {c: [] for c in COLORS}
    total: list[StatRow] = []
    for row in rows:
        if row.type == "backend":
            total.append(row)
        elif row.type == "server" and (parsed := parse_server_name(row.svname)):
            by_color[parsed[0]].append(row)
    return RegionTraffic(
        region=region,
        colors={c: TrafficCounters.of(rows) for c, rows in by_color.items()},
        total=TrafficCounters.of(total),
    )
