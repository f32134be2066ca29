"""Prometheus for the local environment: it scrapes HAProxy's own exporter every second.

Debian's ``prometheus`` (2.42, ``make system-packages``) runs as a child of the data plane::

    with prometheus_server(proxy.metrics_url) as prometheus:
        query(prometheus.url, 'haproxy_server_http_responses_total{code="5xx"}')

Its configuration and its database live in a temporary directory under .local, removed on the
way out: every run starts with no history, as moto does. It scrapes HAProxy and nothing else,
writes and reads no remote storage and listens on ``host`` only (loopback unless told
otherwise, as HAProxy's frontends).

HAProxy 2.6's series worth querying (labels ``proxy``, ``server``, ``code``; a region's backend
is ``tasks-<region>``, a color's servers are ``<color>-<port>-<n>``, so a color's are
``server=~"green-.*"``: ``color_selector``)::

    haproxy_server_sessions_total            requests and WebSockets sent to a server
    haproxy_server_http_responses_total      its answers by class: code="2xx", "5xx", …
    haproxy_server_connection_errors_total   connections to it that failed
    haproxy_server_current_sessions          in progress now (WebSocket games among them)
    haproxy_backend_http_requests_total      a region's requests, also those no server took
    haproxy_backend_http_responses_total     a region's answers by class, HAProxy's own 503s too

e.g. green's 5xx a second: ``sum(rate(haproxy_server_http_responses_total{proxy="tasks-us-west-2",
server=~"green-.*",code="5xx"}[10s]))``.
"""

import json
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from local.data_plane.haproxy import backend_name
from local.processes import (
    STATE_DIR,
    background,
    debian_command,
    free_port,
    log_path,
    require_free_port,
    wait_until,
)
from models.colors import Color

DEBIAN_PROMETHEUS = Path("/usr/bin/prometheus")
SCRAPE_INTERVAL = "1s"
"""How often HAProxy is scraped: a deployment's switch lasts seconds, a rate needs samples."""
RETENTION = "6h"
"""Longer than any ``make dev`` session is looked at; bounds the disk a forgotten one uses."""
JOB = "haproxy"


def color_selector(region: str, color: Color) -> str:
    """The labels of ``color``'s servers in ``region``'s backend, for a PromQL selector:
    ``proxy="tasks-us-west-2",server=~"green-.*"``."""
    return f'proxy="{backend_name(region)}",server=~"{color}-.*"'


def prometheus_binary() -> str:
    """The ``prometheus`` command: on PATH, else Debian's; RuntimeError when neither exists."""
    return debian_command("prometheus", DEBIAN_PROMETHEUS)


def prometheus_config(metrics_url: str) -> str:
    """The configuration scraping HAProxy's exporter at ``metrics_url`` every SCRAPE_INTERVAL.

    JSON, which is YAML too: written without a YAML library, with nothing left to escape.
    """
    parsed = urllib.parse.urlsplit(metrics_url)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise ValueError(f"expected http://HOST:PORT/PATH, not {metrics_url!r}")
    config = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            # At most the interval: Prometheus refuses a longer one, and its default is 10 s.
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": parsed.path or "/metrics",
                "static_configs": [{"targets": [parsed.netloc]}],
            }
        ],
    }
    return json.dumps(config, indent=2) + "\n"


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus: where its API is."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def prometheus_server(
    metrics_url: str,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 30,
) -> Iterator[Prometheus]:
    """Prometheus scraping ``metrics_url`` (HAProxy's exporter), on ``host:port`` (a free port
    without one), its output in .local/logs/prometheus-<port>.log; yields once it is ready."""
    port = port or free_port()
    require_free_port(port, "Prometheus")
    name = f"prometheus-{port}"
    parent = STATE_DIR / "prometheus"
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=parent) as directory:
        data_dir = Path(directory)
        config_path = data_dir / "prometheus.yml"
        config_path.write_text(prometheus_config(metrics_url), encoding="utf-8")
        command = [
            prometheus_binary(),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data_dir / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address={host}:{port}",
        ]
        with background(name, command) as process:
            prometheus = Prometheus(host, port, process, data_dir)
            url = prometheus.url
            wait_until(
                lambda: _ready(url), startup_timeout, "Prometheus ready", process, log_path(name)
            )
            yield prometheus


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{_local(url)}/-/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _local(url: str) -> str:
    """``url`` with a wildcard address (what ``--host 0.0.0.0`` listens on) as loopback."""
    return url.replace("//0.0.0.0:", "//127.0.0.1:", 1)


class Sample(BaseModel):
    """One series of an instant query's answer: its labels and its value now."""

    metric: dict[str, str]
    value: tuple[float, str]
    """(Unix time, the value as Prometheus writes it: "3", "0.5", "NaN")."""

    @property
    def number(self) -> float:
        return float(self.value[1])


class _VectorData(BaseModel):
    resultType: Literal["vector"]
    result: list[Sample]


class _QueryAnswer(BaseModel):
    status: Literal["success"]
    data: _VectorData


def query(url: str, promql: str, timeout: float = 5) -> list[Sample]:
    """The instant ``promql`` query against the Prometheus at ``url``: one Sample per series.

    RuntimeError with Prometheus's words for a query it refuses; OSError when unreachable.
    """
    address = f"{_local(url)}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as err:
        said = json.loads(err.read() or b"{}").get("error", err.reason)
        raise RuntimeError(f"Prometheus refused {promql!r}: {said}") from None
    return _QueryAnswer.model_validate_json(body).data.result
