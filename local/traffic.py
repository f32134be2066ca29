"""What players saw during a deployment, from both sides: the load generator and HAProxy.

The clients count requests that failed and sessions cut mid-game. That alone proves little:
HAProxy retries a request whose server refused it and redispatches it to another, so a dead
server can hide behind a client-side 0. Its own counters say what it hid: connection errors
(``econ``), responses cut off (``eresp``), retries (``wretr``) and redispatches (``wredis``).
Zero downtime is all of them at 0 over enough traffic to mean something.
"""

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel

from local.data_plane.load_balancer import RegionTraffic, region_traffic
from local.data_plane.running import DataPlane
from local.load import LoadResult, LoadSettings, load_in_background
from models.colors import COLORS


class TrafficReport(BaseModel):
    """Every region's load and HAProxy counters, summed."""

    requests: int
    failed: int
    sessions: int
    cut: int
    cut_on: dict[str, int]
    """Color → sessions cut while on it."""
    reconnected: int
    landed: dict[str, int]
    """Color → players who reconnected onto it."""
    retried: int
    """HAProxy's retries and redispatches (wretr + wredis), every color."""
    connection_errors: int
    """HAProxy's econ, every color and the backends."""
    response_errors: int
    """HAProxy's eresp, every color and the backends."""

    @classmethod
    def of(
        cls, loads: Mapping[str, LoadResult], counters: Mapping[str, RegionTraffic]
    ) -> "TrafficReport":
        """``loads`` and ``counters`` by region."""
        landed = {
            color: sum(load.sessions.landed.get(color, 0) for load in loads.values())
            for color in COLORS
        }
        return cls(
            requests=sum(load.requests.sent for load in loads.values()),
            failed=sum(load.requests.failed for load in loads.values()),
            sessions=sum(load.sessions.opened for load in loads.values()),
            cut=sum(load.sessions.cut for load in loads.values()),
            cut_on={
                color: sum(load.sessions.cut_on.get(color, 0) for load in loads.values())
                for color in COLORS
            },
            reconnected=sum(load.sessions.reconnected for load in loads.values()),
            landed=landed,
            retried=sum(c.total.wretr + c.total.wredis for c in counters.values()),
            connection_errors=sum(c.total.econ for c in counters.values()),
            response_errors=sum(c.total.eresp for c in counters.values()),
        )

    def line(self) -> str:
        """``traffic: N requests, F failed; S sessions, C cut mid-game; R retried or
        redispatched``: what ``make demo`` ends with."""
        return (
            f"traffic: {self.requests} requests, {self.failed} failed;"
            f" {self.sessions} sessions, {self.cut} cut mid-game;"
            f" {self.retried} retried or redispatched"
        )

    def problems(self, min_requests: int = 0, min_sessions: int = 0) -> list[str]:
        """What players noticed (or would have, but for HAProxy), and too little traffic to
        tell; empty when the deployment was invisible to them."""
        found = [
            f"{count} {what}"
            for count, what in (
                (self.failed, "requests failed"),
                (self.cut, "sessions cut mid-game"),
                (self.retried, "requests retried or redispatched by HAProxy"),
                (self.connection_errors, "connection errors at HAProxy (econ)"),
                (self.response_errors, "responses cut off at HAProxy (eresp)"),
            )
            if count
        ]
        if self.requests < min_requests:
            found.append(f"only {self.requests} requests (at least {min_requests} wanted)")
        if self.sessions < min_sessions:
            found.append(f"only {self.sessions} sessions (at least {min_sessions} wanted)")
        return found


@dataclass
class Measured:
    """What ``measured`` saw, filled in when its block ends."""

    loads: dict[str, LoadResult] = field(default_factory=dict)
    """Region → what its load generator saw."""
    report: TrafficReport | None = None


@contextmanager
def measured(
    plane: DataPlane, settings: Mapping[str, LoadSettings], name: str
) -> Iterator[Measured]:
    """The load of ``settings`` (region → its players and requests) for the block, each
    region's in the background; then what the loads and HAProxy saw during the block (HAProxy's
    counters as a difference: what came before does not count)."""
    api = plane.api
    before = {region: region_traffic(api, region).total for region in settings}
    seen = Measured()
    with ExitStack() as running:
        loads = {
            region: running.enter_context(load_in_background(each, name=f"{name}-{region}"))
            for region, each in settings.items()
        }
        yield seen
    counters = {}
    for region, load in loads.items():
        if load.result is None:
            raise RuntimeError(f"{name}-{region}: the load left no result")
        seen.loads[region] = load.result
        counters[region] = region_traffic(api, region)
        counters[region].total = counters[region].total.since(before[region])
    seen.report = TrafficReport.of(seen.loads, counters)
