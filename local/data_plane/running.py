"""Run ``python -m local.data_plane`` as a background process, and where to reach it.

with data_plane(config_path, "prod", ["us-west-2"], aws_env) as plane:
    plane.players["us-west-2"]      # http://127.0.0.1:PORT, HAProxy's frontend for players
    plane.api.stats()               # HAProxy's counters, through its Runtime API
    query(plane.prometheus, "haproxy_server_current_sessions")  # prometheus.py's query
"""

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from local.data_plane.haproxy import RuntimeApi, backend_name
from local.processes import background, free_port, log_path, wait_until
from models.colors import Color

HOST = "127.0.0.1"


class DataPlane(BaseModel):
    """Where the running data plane listens: what ``make dev`` writes to endpoints.json."""

    players: dict[str, str]
    """Region → the URL players and requests use: HAProxy's frontend (the ALB's DNS name)."""
    gateway: str
    """The colors' own endpoints are under it: ``<gateway>/<region>/<color>``."""
    stats: str
    """HAProxy's stats page."""
    metrics: str
    """HAProxy's counters in Prometheus's text format."""
    runtime_api: str
    """``host:port`` of HAProxy's Runtime API (``echo 'show stat' | nc HOST PORT``)."""
    prometheus: str
    """Prometheus scraping HAProxy every second: its API (``/api/v1/query``) and web UI."""
    log: Path

    @property
    def api(self) -> RuntimeApi:
        host, _, port = self.runtime_api.rpartition(":")
        return RuntimeApi(host, int(port))

    def color_url(self, region: str, color: Color) -> str:
        """The color's own endpoint in ``region``: the ``url`` of the color in deploy.toml."""
        return color_url(self.gateway, region, color)


def color_url(gateway: str, region: str, color: Color) -> str:
    return f"{gateway}/{region}/{color}"


def gateway_url(port: int) -> str:
    return f"http://{HOST}:{port}"


@contextmanager
def data_plane(
    config_path: Path,
    environment: str,
    regions: Sequence[str],
    env: Mapping[str, str],
    *,
    gateway_port: int,
    prometheus_port: int | None = None,
    startup_timeout: float = 60,
) -> Iterator[DataPlane]:
    """The data plane for ``environment`` of ``config_path`` (whose colors' URLs are under
    ``gateway_url(gateway_port)``; Prometheus on ``prometheus_port``, a free one if None), with
    ``env`` pointing boto3 at moto; yields once every
    region's backend has a server taking traffic — its active color's tasks run and HAProxy has
    them. (Asked through the Runtime API: a probe through the frontend before that would be an
    error in the counters that measure what players see.)"""
    frontends = {region: free_port() for region in regions}
    runtime_port, stats_port = free_port(), free_port()
    prometheus_port = prometheus_port or free_port()
    name = f"data-plane-{gateway_port}"
    command = [sys.executable, "-m", "local.data_plane", "--config", str(config_path)]
    command += ["--environment", environment, "--host", HOST]
    command += ["--gateway-port", str(gateway_port), "--runtime-api-port", str(runtime_port)]
    command += ["--stats-port", str(stats_port), "--prometheus-port", str(prometheus_port)]
    for region, port in frontends.items():
        command += ["--frontend", f"{region}={port}"]
    plane = DataPlane(
        players={region: f"http://{HOST}:{port}" for region, port in frontends.items()},
        gateway=gateway_url(gateway_port),
        stats=f"http://{HOST}:{stats_port}/stats",
        metrics=f"http://{HOST}:{stats_port}/metrics",
        runtime_api=f"{HOST}:{runtime_port}",
        prometheus=f"http://{HOST}:{prometheus_port}",
        log=log_path(name),
    )

    def serving() -> bool:
        api = plane.api
        return api.answers() and all(
            any(s.weight > 0 and s.admin_state == "ready" for s in api.servers(backend_name(r)))
            for r in regions
        )

    with background(name, command, env=env) as process:
        wait_until(
            serving,
            startup_timeout,
            "serving players in every region",
            process,
            plane.log,
        )
        yield plane
