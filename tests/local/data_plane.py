"""What the data plane's tests run and send: backends (tasks) and requests through HAProxy.

moto (5.2) keeps a target group's targets by Id alone: two targets 127.0.0.1:9001 and
127.0.0.1:9002 would be one. Each backend here therefore listens on its own loopback address
(Linux routes all of 127.0.0.0/8 to the loopback interface).
"""

import http.client
import itertools
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from local.data_plane.haproxy import Haproxy
from models.colors import Color
from tests.activities.aws_resources import REGION, Alb

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

HOLD_LIMIT = 30
"""Seconds a held request waits for ``release`` at most: a failing test still ends."""

_addresses = itertools.count()


def loopback_address() -> str:
    """A loopback address no other backend of this session uses: 127.0.0.2, 127.0.0.3, …"""
    n = next(_addresses)
    return f"127.0.{n // 250}.{2 + n % 250}"


class Backend:
    """A task: an HTTP server on its own loopback address answering its name.

    ``GET /`` answers at once; ``GET /hold`` answers only once ``release()`` is called, so a
    request stays in progress as long as a test needs (a player's long session); ``GET /fail``
    answers 500, as a broken version would.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.held = threading.Semaphore(0)
        self.released = threading.Event()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/hold":
                    backend.held.release()
                    backend.released.wait(HOLD_LIMIT)
                body = backend.name.encode()
                self.send_response(500 if self.path == "/fail" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((loopback_address(), 0), Handler)
        self._server.daemon_threads = True
        self.address: str = self._server.server_address[0]  # type: ignore[assignment]
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self.released.set()

    def kill(self) -> None:
        """Stop listening: connections to it are refused from now on, as to a dead task."""
        self._server.shutdown()
        self._server.server_close()

    def register(self, elbv2: "ElasticLoadBalancingv2Client", target_group: str) -> None:
        elbv2.register_targets(
            TargetGroupArn=target_group, Targets=[{"Id": self.address, "Port": self.port}]
        )

    def deregister(self, elbv2: "ElasticLoadBalancingv2Client", target_group: str) -> None:
        elbv2.deregister_targets(
            TargetGroupArn=target_group, Targets=[{"Id": self.address, "Port": self.port}]
        )


def split(proxy: Haproxy, requests: int, path: str = "/") -> Counter[str]:
    """Who answered ``requests`` GETs of ``path`` sent through HAProxy on one keep-alive
    connection: a backend's name, or ``HTTP <status>`` for an answer other than 200."""
    answered: Counter[str] = Counter()
    connection = http.client.HTTPConnection(proxy.host, proxy.players[REGION], timeout=10)
    try:
        for _ in range(requests):
            connection.request("GET", path)
            response = response_of(connection)
            answered[response if isinstance(response, str) else f"HTTP {response}"] += 1
    finally:
        connection.close()
    return answered


def response_of(connection: http.client.HTTPConnection) -> str | int:
    """The body of a 200 answer, or the status of another."""
    response = connection.getresponse()
    body = response.read().decode()
    return body if response.status == 200 else response.status


def shares(answered: Counter[str], colors: dict[str, Color]) -> dict[Color, float]:
    """Each color's share of the answers, from the backends' names."""
    total = sum(answered.values())
    result: dict[Color, float] = {"blue": 0.0, "green": 0.0}
    for name, count in answered.items():
        result[colors[name]] += count / total
    return result


def listener_load_balancer(alb: Alb) -> str:
    """The LoadBalancer dimension of the ALB's metrics, read off its listener's ARN
    (``…:listener/app/<name>/<id>/<listener id>`` → ``app/<name>/<id>``)."""
    return "/".join(alb.listener_arn.split(":", 5)[5].split("/")[1:4])
