"""A local stand-in for a Slack incoming webhook and for a webhook receiver: a small threaded
HTTP server on 127.0.0.1 that records every notification the worker POSTs to it.

    with NotificationReceiver() as receiver:
        worker_env = {"SLACK_DEPLOY_WEBHOOK": receiver.url("/slack/T000/B000/secret")}
        ...
        for message in receiver.wait_for(lambda got: len(got) >= 2, timeout=60):
            print(message.line())   # notified: switched game 2 → green (prod, us-west-2)

It answers 200 ``ok`` (as Slack does) unless told otherwise for a path: ``answers={"/hook":
[500, 200]}`` answers 500 to the first POST to /hook, then 200; the last answer repeats.
``make demo`` prints what it received; the tests check it.
"""

import asyncio
import html
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Received:
    """One POST: where it went, its headers, its JSON body, and what the receiver answered."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int

    @property
    def kind(self) -> str:
        """``slack`` (a message with blocks) or ``webhook`` (the notice's JSON document)."""
        return "slack" if "blocks" in self.body else "webhook"

    @property
    def event(self) -> str:
        """The notification's event, from its ``X-BlueGreen-Event`` header."""
        return self.headers.get("x-bluegreen-event", "")

    @property
    def notification_id(self) -> str:
        return self.headers.get("x-bluegreen-notification-id", "")

    def text(self) -> str:
        """A Slack message's plain text (unescaped), or a webhook document's title."""
        if self.kind == "slack":
            return html.unescape(str(self.body.get("text", "")))
        return str(self.body.get("title", ""))

    def everything(self) -> str:
        """Every string of the body, a line each, Slack's escapes undone: what a test searches."""
        strings: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, str):
                strings.append(html.unescape(node))
            elif isinstance(node, dict):
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.body)
        return "\n".join(strings)

    def line(self) -> str:
        """What ``make demo`` prints: ``notified (slack): switched game 2 → green (…)``."""
        return f"notified ({self.kind}): {self.text()}"


class NotificationReceiver:
    """Records the notifications POSTed to it; a context manager that starts and stops it."""

    def __init__(self, answers: Mapping[str, Sequence[int]] | None = None) -> None:
        self._answers = {path: list(statuses) for path, statuses in (answers or {}).items()}
        self._received: list[Received] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="notify-receiver", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        """A URL of this receiver: what goes into the worker's ``url_env`` variable."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def received(self) -> list[Received]:
        """Everything received so far, in order."""
        with self._changed:
            return list(self._received)

    def wait_for(
        self, enough: Callable[[list[Received]], bool], timeout: float = 60
    ) -> list[Received]:
        """Everything received once ``enough(received)`` holds; TimeoutError after ``timeout``
        seconds, saying what did arrive."""
        with self._changed:
            if not self._changed.wait_for(lambda: enough(list(self._received)), timeout):
                got = [f"{r.kind} {r.event}" for r in self._received]
                raise TimeoutError(f"not the notifications expected after {timeout:.0f}s: {got}")
            return list(self._received)

    async def arrived(
        self, enough: Callable[[list[Received]], bool], timeout: float = 60
    ) -> list[Received]:
        """``wait_for`` from a coroutine, in a thread: a worker on the same event loop goes on
        sending while it waits (blocking the loop would stop the very notifications awaited)."""
        return await asyncio.to_thread(self.wait_for, enough, timeout)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _answer(self, path: str) -> int:
        statuses = self._answers.get(path)
        if not statuses:
            return 200
        return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    def _record(self, received: Received) -> None:
        with self._changed:
            self._received.append(received)
            self._changed.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", errors="replace")}
                with receiver._changed:
                    status = receiver._answer(self.path)
                # Recorded before the answer: whoever got the answer finds it recorded.
                headers = {key.lower(): value for key, value in self.headers.items()}
                receiver._record(Received(self.path, headers, body, status))
                answer = b"ok" if status < 300 else b"failing on purpose"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints its own lines."""

        return Handler


# --- the local environment's notify tables ------------------------------------------------------

SLACK_ENV = "DEMO_SLACK_WEBHOOK"
"""The worker's variable holding the local Slack stand-in's URL."""
WEBHOOK_ENV = "DEMO_DEPLOY_WEBHOOK"
"""The worker's variable holding the local webhook receiver's URL."""
SLACK_PATH = "/slack/services/T0LOCAL/B0LOCAL/local-demo-secret"
"""Shaped like a Slack incoming webhook's path, whose last part is the secret."""
WEBHOOK_PATH = "/webhook"
WEBHOOK_EVENTS = ("succeeded", "failed", "rolled_back", "needs_a_person")
"""The webhook hears of the ends only; Slack of every event."""


def notify_tables(environment: str, web_ui_url: str | None) -> str:
    """The deploy.toml tables of the local environment's notifications: every event to the
    Slack stand-in (linking the Web UI when there is one), the ends to the webhook."""
    q = json.dumps
    ui = f"web_ui_url = {q(web_ui_url)}\n" if web_ui_url else ""
    return f"""
# Who hears of the deployment: a local receiver stands in for a Slack incoming webhook and for a
# webhook (local/notify_receiver.py). The URLs are secrets: the worker reads them from these
# environment variables, and they appear nowhere else.
[[environments.{environment}.notify]]
kind = "slack"
url_env = {q(SLACK_ENV)}
{ui}
[[environments.{environment}.notify]]
kind = "webhook"
url_env = {q(WEBHOOK_ENV)}
events = {q(list(WEBHOOK_EVENTS))}
"""


def worker_env(receiver: NotificationReceiver) -> dict[str, str]:
    """The variables the worker needs for ``notify_tables``: the receiver's URLs."""
    return {SLACK_ENV: receiver.url(SLACK_PATH), WEBHOOK_ENV: receiver.url(WEBHOOK_PATH)}
