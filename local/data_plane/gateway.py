"""Each color's own endpoint: the ``url`` of a color in deploy.toml, in front of all its tasks.

A deployment talks to one color directly, beside the public traffic: its integration checks,
the count of the old version's sessions, the reconnect notice. In AWS that is a per-color test
listener or service-discovery name covering all the color's tasks. Here one HTTP server answers
for every color of every region, at ``/<region>/<color>/…``:

- ``GET  …/connections``  every running task asked; the sum of their counts
- ``POST …/reconnect``    every running task told; the sum of their counts
- anything else           passed to one running task, each in turn (503 when there is none)

"Running" includes a task that is deregistered but not stopped yet: its sessions are still
there, and the drain must see them.
"""

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any, cast

FORWARDED_HEADERS = ("X-Game-Version", "Content-Type")
"""Request headers passed on to the tasks; the sample game's version header among them."""
SUMMED = {"/connections": "connections", "/reconnect": "notified"}
"""Paths every task answers, with the JSON key whose values add up."""
TIMEOUT = 5.0

UrlsOf = Callable[[str, str], list[str] | None]
"""(region, color) → the base URLs of the color's running tasks; None for no such color."""


class Gateway(ThreadingHTTPServer):
    """The server; ``urls_of`` says where each color's tasks are right now."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], urls_of: UrlsOf) -> None:
        super().__init__(address, GatewayHandler)
        self.urls_of = urls_of
        self.turn = itertools.count()


@contextmanager
def serving_gateway(host: str, port: int, urls_of: UrlsOf) -> Iterator[Gateway]:
    """The gateway on host:port, served from a thread until the block ends."""
    gateway = Gateway((host, port), urls_of)
    thread = Thread(target=gateway.serve_forever, args=(0.1,), name="gateway", daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        gateway.shutdown()
        thread.join()
        gateway.server_close()


class GatewayHandler(BaseHTTPRequestHandler):
    """``/<region>/<color>/<path>`` to the color's tasks."""

    @property
    def gateway(self) -> Gateway:
        return cast(Gateway, self.server)

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:
        # The deployment polls these every second: its own logs say what it asked.
        pass

    def _route(self) -> None:
        # "/us-west-2/blue/health" → "us-west-2", "blue", "/health"
        _, region, color, rest = [*self.path.split("?")[0].split("/", 3), "", "", ""][:4]
        path = "/" + rest
        urls = self.gateway.urls_of(region, color)
        if urls is None:
            self._send(HTTPStatus.NOT_FOUND, _error(f"no color {color!r} in region {region!r}"))
            return
        if not urls:
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE, _error(f"{region} {color} runs no task right now")
            )
            return
        if path in SUMMED:
            self._sum(urls, path, SUMMED[path])
            return
        url = urls[next(self.gateway.turn) % len(urls)]
        try:
            status, body, content_type = self._call(url, path)
        except OSError as err:
            self._send(HTTPStatus.BAD_GATEWAY, _error(f"task at {url}: {err}"))
            return
        self._send(status, body, content_type)

    def _sum(self, urls: list[str], path: str, key: str) -> None:
        total = 0
        for url in urls:
            try:
                status, body, _ = self._call(url, path)
            except ConnectionRefusedError:
                continue  # stopped since the list was read: none of its sessions are left
            except OSError as err:
                self._send(HTTPStatus.BAD_GATEWAY, _error(f"task at {url}: {err}"))
                return
            if status >= 300:
                self._send(HTTPStatus.BAD_GATEWAY, _error(f"task at {url} answered {status}"))
                return
            total += int(json.loads(body)[key])
        status = HTTPStatus.ACCEPTED if self.command == "POST" else HTTPStatus.OK
        self._send(status, json.dumps({key: total}).encode(), "application/json")

    def _call(self, url: str, path: str) -> tuple[int, bytes, str]:
        headers = {k: v for k in FORWARDED_HEADERS if (v := self.headers.get(k)) is not None}
        request = urllib.request.Request(url + path, method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                return answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read(), err.headers.get("Content-Type", "")
        except urllib.error.URLError as err:
            if isinstance(err.reason, ConnectionRefusedError):
                raise err.reason from err
            raise

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
