"""Connection counting, reconnect notification and integration checks against a real HTTP server."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.connections import count_connections, notify_reconnect, parse_count
from activities.http import MAX_BODY, request
from activities.integration_checks import run_integration_checks
from local.processes import free_port
from models.activities import ConnectionsInput, IntegrationChecksInput
from models.config import IntegrationCheck, expand_url

# path → (status, body) the server answers with
ANSWERS: dict[str, tuple[int, str]] = {
    "/count": (200, "3\n"),
    "/count-json": (200, json.dumps({"connections": 5, "version": "1"})),
    "/count-bool": (200, json.dumps({"connections": True})),
    "/count-negative": (200, "-1"),
    "/garbage": (200, "<html>maintenance</html>"),
    "/missing": (404, "no such thing"),
    "/teapot": (418, "short and stout"),
    "/busy": (429, "slow down"),
    "/broken": (503, "upstream down"),
    "/reconnect": (204, ""),
    "/health": (200, '{"status": "ok"}'),
    "/big": (200, "x" * (MAX_BODY * 2)),
}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    url: str
    requests: list[Seen] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: "RecordingServer"

    def _answer(self) -> None:
        self.server.record.requests.append(Seen(self.command, self.path, dict(self.headers)))
        if self.path == "/slow":
            time.sleep(1)
        status, body = ANSWERS.get(self.path, (200, "0"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    record: Server


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = RecordingServer(("127.0.0.1", 0), Handler)
    httpd.record = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.record
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def connections(url: str, timeout: float = 5) -> ConnectionsInput:
    return ConnectionsInput(
        url=url,
        version_header="X-Game-Version",
        version="1",
        timeout=timedelta(seconds=timeout),
    )


# --- count_connections and notify_reconnect ------------------------------------------------------


@pytest.mark.parametrize(("path", "count"), [("/count", 3), ("/count-json", 5)])
def test_counts_a_bare_or_json_answer_and_sends_the_version(
    env: ActivityEnvironment, server: Server, path: str, count: int
) -> None:
    seen = env.run(count_connections, connections(server.url + path))

    assert (seen.version, seen.count, seen.error) == ("1", count, None)
    assert [(r.method, r.path, r.headers["X-Game-Version"]) for r in server.requests] == [
        ("GET", path, "1")
    ]


@pytest.mark.parametrize(
    ("path", "retryable", "says"),
    [
        ("/broken", True, "HTTP 503: upstream down"),
        ("/busy", True, "HTTP 429: slow down"),
        ("/missing", False, "HTTP 404: no such thing"),
        ("/garbage", False, "got: <html>maintenance</html>"),
        ("/count-bool", False, 'got: {"connections": true}'),
        ("/count-negative", False, "got: -1"),
    ],
)
def test_bad_answers_are_errors_naming_url_and_answer(
    env: ActivityEnvironment, server: Server, path: str, retryable: bool, says: str
) -> None:
    with pytest.raises(ApplicationError) as caught:
        env.run(count_connections, connections(server.url + path))

    assert caught.value.non_retryable is not retryable
    assert caught.value.message.startswith(f"GET {server.url}{path}: ")
    assert says in caught.value.message


def test_a_refused_connection_is_retried(env: ActivityEnvironment) -> None:
    url = f"http://127.0.0.1:{free_port()}/count"
    with pytest.raises(ApplicationError) as caught:
        env.run(count_connections, connections(url))

    assert not caught.value.non_retryable
    assert caught.value.type == "HttpConnectionError"
    assert caught.value.message.startswith(f"GET {url}: ")
    assert "refused" in caught.value.message.lower()


def test_a_timeout_is_retried(env: ActivityEnvironment, server: Server) -> None:
    with pytest.raises(ApplicationError) as caught:
        env.run(count_connections, connections(server.url + "/slow", timeout=0.2))

    assert not caught.value.non_retryable
    assert "timed out" in caught.value.message


def test_a_count_with_clients_left_reminds_them_to_reconnect(
    env: ActivityEnvironment, server: Server
) -> None:
    left = connections(server.url + "/count").model_copy(
        update={"remind_url": server.url + "/reconnect"}
    )
    none_left = left.model_copy(update={"url": server.url + "/zero"})

    assert env.run(count_connections, left).count == 3
    assert env.run(count_connections, none_left).count == 0

    assert [(r.method, r.path, r.headers["X-Game-Version"]) for r in server.requests] == [
        ("GET", "/count", "1"),
        ("POST", "/reconnect", "1"),
        ("GET", "/zero", "1"),
    ]


def test_a_failed_reminder_still_returns_the_count(
    env: ActivityEnvironment, server: Server
) -> None:
    arg = connections(server.url + "/count").model_copy(
        update={"remind_url": server.url + "/broken"}
    )

    assert env.run(count_connections, arg).count == 3


def test_notify_posts_with_the_version(env: ActivityEnvironment, server: Server) -> None:
    env.run(notify_reconnect, connections(server.url + "/reconnect"))
    env.run(notify_reconnect, connections(server.url + "/reconnect"))

    assert [(r.method, r.headers["X-Game-Version"]) for r in server.requests] == [
        ("POST", "1"),
        ("POST", "1"),
    ]


@pytest.mark.parametrize(("path", "retryable"), [("/broken", True), ("/missing", False)])
def test_notify_fails_on_non_2xx(
    env: ActivityEnvironment, server: Server, path: str, retryable: bool
) -> None:
    with pytest.raises(ApplicationError) as caught:
        env.run(notify_reconnect, connections(server.url + path))

    assert caught.value.non_retryable is not retryable
    assert caught.value.message.startswith(f"POST {server.url}{path}: HTTP ")


@pytest.mark.parametrize(
    ("body", "count"),
    [("0", 0), (" 12\n", 12), ('{"connections": 7}', 7), ("1.5", None), ("[]", None), ("", None)],
)
def test_parse_count(body: str, count: int | None) -> None:
    assert parse_count(body) == count


def test_request_reads_a_bounded_body_and_refuses_other_schemes(server: Server) -> None:
    assert len(request(server.url + "/big").body) == MAX_BODY
    with pytest.raises(ApplicationError) as caught:
        request("file:///etc/passwd")
    assert caught.value.non_retryable
    with pytest.raises(ApplicationError) as bad_port:
        request("http://127.0.0.1:port/health")
    assert bad_port.value.non_retryable


# --- run_integration_checks ------------------------------------------------------------------


def check(name: str, url: str, **fields: object) -> IntegrationCheck:
    return IntegrationCheck.model_validate({"name": name, "url": url, **fields})


def test_every_check_is_reported(env: ActivityEnvironment, server: Server) -> None:
    refused = f"http://127.0.0.1:{free_port()}/health"
    checks = [
        check("health", "{color_url}/health", body_contains='"ok"'),
        check("head", "{color_url}/health", method="HEAD"),
        check("missing page", "{color_url}/missing", expected_status=404),
        check("wrong status", "{color_url}/broken"),
        check("wrong body", "{color_url}/health", body_contains="ready"),
        check("refused", refused),
    ]

    results = env.run(
        run_integration_checks, IntegrationChecksInput(checks=checks, color_url=server.url + "/")
    )

    assert [(r.name, r.passed, r.status) for r in results] == [
        ("health", True, 200),
        ("head", True, 200),
        ("missing page", True, 404),
        ("wrong status", False, 503),
        ("wrong body", False, 200),
        ("refused", False, None),
    ]
    assert results[0].url == f"{server.url}/health"
    assert results[3].detail == "expected HTTP 200, got 503: upstream down"
    assert results[4].detail == 'body does not contain \'ready\': {"status": "ok"}'
    assert results[5].detail.startswith(f"GET {refused}: ")
    assert [r.method for r in server.requests] == ["GET", "HEAD", "GET", "GET", "GET"]
    assert all(r.elapsed_ms >= 0 for r in results)


def test_a_check_needing_a_color_url_without_one_fails(env: ActivityEnvironment) -> None:
    checks = [check("health", "{color_url}/health")]

    [result] = env.run(
        run_integration_checks, IntegrationChecksInput(checks=checks, color_url=None)
    )

    assert (result.passed, result.status) == (False, None)
    assert "{color_url}" in result.detail


def test_expand_url() -> None:
    assert (
        expand_url("{color_url}/health", "http://10.0.1.5:8080/") == "http://10.0.1.5:8080/health"
    )
    assert expand_url("https://game.example.com/health", None) == "https://game.example.com/health"
    with pytest.raises(ValueError, match="color_url"):
        expand_url("{color_url}/health", None)
