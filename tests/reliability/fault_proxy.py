"""A fault-injecting HTTP proxy, running in the test's own process: between boto3 and moto, or
between a worker and a game server.

Point ``AWS_ENDPOINT_URL`` at :attr:`FaultProxy.url` and every AWS call goes through it to moto,
except those a :class:`Rule` matches: they get AWS's own throttling, 5xx or access-denied answer
in the service's wire format, moto's answer late, a 500 after moto has done the work, or moto's
answer held back until the test releases it::

    with FaultProxy(moto_url) as proxy, environ({"AWS_ENDPOINT_URL": proxy.url}):
        proxy.add(Rule("ecs.UpdateService", "throttle", times=3))
        ...  # the first three UpdateService calls are throttled, the fourth reaches moto
        assert proxy.answers("ecs.UpdateService") == ["ThrottlingException"] * 3 + [200]

Actions are named as ``activities/aws.py`` names them (``ecs.UpdateService``,
``elbv2.ModifyListener``, ``cloudwatch.DescribeAlarms``), from the ``X-Amz-Target`` header (JSON
protocols: ECS, SSM, and CloudWatch, which botocore calls in JSON) or the form's ``Action``
(query protocol: ELBv2). Any other request is named by its method and path (``GET /health``).

Every call is recorded, with its parameters, even when the caller was killed before it could
see the answer: what the crash tests count changes by.
"""

import http.client
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

Fault = Literal["throttle", "500", "503", "denied", "error", "slow", "lost", "hold"]
"""``error``: the rule's own ``code`` and ``status``; ``slow``: moto's answer ``seconds`` late;
``lost``: moto does the work, the caller gets a 500 (a response lost on the way back);
``hold``: moto does the work, its answer waits for :meth:`FaultProxy.release` (a caller killed
in the middle of a call)."""

ROLE = "arn:aws:sts::123456789012:assumed-role/bluegreen-worker/i-0123456789abcdef0"
"""Who AWS says was denied."""

# Signing names (the Authorization header's credential scope) that boto3 calls otherwise.
_CLIENT_NAMES = {"elasticloadbalancing": "elbv2", "monitoring": "cloudwatch"}
_IAM_PREFIXES = {"elbv2": "elasticloadbalancing"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/")
# Set again by whoever sends the message on (http.client, BaseHTTPRequestHandler).
_NOT_FORWARDED = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "server",
    "date",
}
_HOLD_LIMIT = 300.0
"""Seconds a held answer waits at most: a test that never releases leaves no thread for good."""


@dataclass(frozen=True)
class Call:
    """One request the proxy saw: its action and region, its parameters (JSON bodies as they
    are, query-protocol forms flattened), botocore's ``amz-sdk-request`` header (its own
    attempt), and what it was answered (an HTTP status, or the injected error's code)."""

    action: str
    region: str
    params: dict[str, Any]
    sdk_request: str
    answer: int | str = 0

    @property
    def succeeded(self) -> bool:
        """Whether the upstream's own answer was a success (not an injected error)."""
        return isinstance(self.answer, int) and self.answer < 300


@dataclass
class Rule:
    """Answer matching requests with ``fault``: the first ``after`` pass, the next ``times``
    get the fault (all the rest, if None), later ones pass again. A request matches by its
    action, and its region and ``params`` where given; ``seconds`` are waited before the fault.
    """

    action: str
    fault: Fault
    times: int | None = 1
    after: int = 0
    region: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    code: str = ""
    status: int = 400
    matched: int = 0

    def fires(self, call: Call) -> bool:
        """Whether this request gets the fault (counting it as matched)."""
        if call.action != self.action or self.region not in (None, call.region):
            return False
        if any(call.params.get(key) != value for key, value in self.params.items()):
            return False
        self.matched += 1
        nth = self.matched - self.after
        return nth > 0 and (self.times is None or nth <= self.times)


class FaultProxy:
    """An HTTP proxy to ``upstream`` on a free local port, serving in a thread."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._rules: list[Rule] = []
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self.held = threading.Event()
        """Set once an answer is being held back."""
        self._released = threading.Event()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FaultProxy":
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def add(self, *rules: Rule) -> None:
        """Inject these faults from now on (each counting its matches from zero)."""
        with self._lock:
            for rule in rules:
                rule.matched = 0
            self._rules.extend(rules)

    def reset(self) -> None:
        """No rules, no calls seen."""
        with self._lock:
            self._rules.clear()
            self._calls.clear()

    def release(self) -> None:
        """Let held answers go, and any later ``hold`` pass (a proxy holds once): to a killed
        caller, the answer is a write into a closed socket."""
        self._released.set()

    @property
    def calls(self) -> list[Call]:
        """Every request so far, in the order they were answered."""
        with self._lock:
            return list(self._calls)

    def counts(self) -> Counter[str]:
        """Requests seen per action."""
        return Counter(call.action for call in self.calls)

    def answers(self, action: str) -> list[int | str]:
        """What each request for ``action`` got, in order."""
        return [call.answer for call in self.calls if call.action == action]

    def actions(self) -> list[str]:
        """Every request's action, in the order they came."""
        return [call.action for call in self.calls]

    def sdk_requests(self) -> set[str]:
        """The distinct ``amz-sdk-request`` headers seen: ``attempt=1; max=1`` and nothing else
        means botocore never retried a call itself."""
        return {call.sdk_request for call in self.calls}

    def _rule_for(self, call: Call) -> Rule | None:
        with self._lock:
            return next((rule for rule in self._rules if rule.fires(call)), None)

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _hold(self) -> None:
        self.held.set()
        self._released.wait(timeout=_HOLD_LIMIT)


def error_answer(rule: Rule, json_codes: bool, action: str) -> tuple[int, str, str]:
    """AWS's (HTTP status, error code, message) for ``rule``'s fault on ``action``;
    ``json_codes``: the codes of JSON services (ECS, SSM), not those of query ones."""
    if rule.fault == "throttle":
        return 400, "ThrottlingException" if json_codes else "Throttling", "Rate exceeded"
    if rule.fault in ("500", "lost"):
        return (
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        )
    if rule.fault == "503":
        return (
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        )
    if rule.fault == "error":
        return rule.status, rule.code, f"{rule.code} (injected by the test)"
    service, _, operation = action.partition(".")
    iam = f"{_IAM_PREFIXES.get(service, service)}:{operation}"
    denied = (
        f"User: {ROLE} is not authorized to perform: {iam} because no identity-based policy"
        f" allows the {iam} action"
    )
    return (400, "AccessDeniedException", denied) if json_codes else (403, "AccessDenied", denied)


class _Server(ThreadingHTTPServer):
    """The proxy's server: a thread per connection, and the proxy its handlers serve."""

    daemon_threads = True

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about connections reset: a killed worker's kept-alive ones end that way."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as boto3's connection pool expects: a connection per worker thread, not per call.
    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        call = self._call(body)
        rule = proxy._rule_for(call)
        if rule is not None:
            time.sleep(rule.seconds)
        if rule is None or rule.fault in ("slow", "hold"):
            status, headers, answer = self._forward(proxy.upstream, body)
            proxy._record(replace(call, answer=status))
            if rule is not None and rule.fault == "hold":
                proxy._hold()
            self._send(status, headers, answer)
            return
        if rule.fault == "lost":
            self._forward(proxy.upstream, body)
        # CloudWatch speaks JSON to botocore but keeps its query protocol's error codes.
        target = self.headers.get("X-Amz-Target")
        query_mode = self.headers.get("x-amzn-query-mode") == "true"
        status, code, message = error_answer(
            rule, target is not None and not query_mode, call.action
        )
        proxy._record(replace(call, answer=code))
        self._send_error(target is not None, query_mode, status, code, message)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def _call(self, body: bytes) -> Call:
        """The request as a :class:`Call`, not answered yet."""
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        region, service = scope.groups() if scope else ("", "")
        sdk_request = self.headers.get("amz-sdk-request", "")
        target = self.headers.get("X-Amz-Target")
        form = {} if target else parse_qs(body.decode(errors="replace"))
        if target:  # JSON protocols: X-Amz-Target: AmazonEC2ContainerServiceV20141113.UpdateService
            operation, params = target.rpartition(".")[2], json.loads(body or b"{}")
        elif "Action" in form:  # query protocol (ELBv2): Action=ModifyListener&…
            operation, params = form["Action"][0], {key: values[0] for key, values in form.items()}
        else:  # not AWS: a game server's health check or players
            return Call(f"{self.command} {urlsplit(self.path).path}", region, {}, sdk_request)
        action = f"{_CLIENT_NAMES.get(service, service)}.{operation}"
        return Call(action, region, params, sdk_request)

    def _forward(self, upstream: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        where = urlsplit(upstream)
        connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
            connection.request(self.command, self.path, body, headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _send_error(
        self, json_protocol: bool, query_mode: bool, status: int, code: str, message: str
    ) -> None:
        request_id = str(uuid.uuid4())
        side = "Receiver" if status >= 500 else "Sender"
        headers = [("x-amzn-RequestId", request_id)]
        if json_protocol:
            headers.append(("Content-Type", "application/x-amz-json-1.1"))
            body = json.dumps({"__type": code, "message": message}).encode()
            if query_mode:
                headers.append(("x-amzn-query-error", f"{code};{side}"))
        else:
            headers.append(("Content-Type", "text/xml"))
            body = (
                f"<ErrorResponse><Error><Type>{side}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>"
            ).encode()
        self._send(status, headers, body)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _NOT_FORWARDED:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The caller was killed while its answer was held back.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the proxy's ``calls`` say what happened."""
