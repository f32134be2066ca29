"""A fault-injecting HTTP proxy between boto3 and moto, running in the test's own process.

Point ``AWS_ENDPOINT_URL`` at :attr:`FaultProxy.url` and every AWS call goes through it to moto,
except those a :class:`Rule` matches: they get AWS's own throttling, 5xx or access-denied answer
in the service's wire format, moto's answer late, or a 500 after moto has done the work::

    with FaultProxy(moto_url) as proxy, environ({"AWS_ENDPOINT_URL": proxy.url}):
        proxy.add(Rule("ecs.UpdateService", "throttle", times=3))
        ...  # the first three UpdateService calls are throttled, the fourth reaches moto
        assert proxy.answers("ecs.UpdateService") == ["ThrottlingException"] * 3 + [200]

Actions are named as ``activities/aws.py`` names them (``ecs.UpdateService``,
``elbv2.ModifyListener``, ``cloudwatch.DescribeAlarms``), from the ``X-Amz-Target`` header (JSON
protocols: ECS, SSM, and CloudWatch, which botocore calls in JSON) or the form's ``Action``
(query protocol: ELBv2).
"""

import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Fault = Literal["throttle", "500", "503", "denied", "error", "slow", "lost"]
"""``error``: the rule's own ``code`` and ``status``; ``slow``: moto's answer ``seconds`` late;
``lost``: moto does the work, the caller gets a 500 (a response lost on the way back)."""

ROLE = "arn:aws:sts::123456789012:assumed-role/bluegreen-worker/i-0123456789abcdef0"
"""Who AWS says was denied."""

# Signing names (the Authorization header's credential scope) that boto3 calls otherwise.
_CLIENT_NAMES = {"elasticloadbalancing": "elbv2", "monitoring": "cloudwatch"}
_IAM_PREFIXES = {"monitoring": "cloudwatch"}
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


@dataclass
class Rule:
    """Answer matching requests with ``fault``: the first ``after`` pass, the next ``times``
    get the fault (all the rest, if None), later ones pass again."""

    action: str
    fault: Fault
    times: int | None = 1
    after: int = 0
    region: str | None = None
    seconds: float = 0.0
    code: str = ""
    status: int = 400
    matched: int = 0

    def fires(self, action: str, region: str) -> bool:
        """Whether this request gets the fault (counting it as matched)."""
        if action != self.action or self.region not in (None, region):
            return False
        self.matched += 1
        nth = self.matched - self.after
        return nth > 0 and (self.times is None or nth <= self.times)


@dataclass(frozen=True)
class Call:
    """One request the proxy saw: its action and region, what it was answered (an HTTP status,
    or the injected error's code) and botocore's ``amz-sdk-request`` header (its own attempt)."""

    action: str
    region: str
    answer: int | str
    sdk_request: str


@dataclass
class FaultProxy:
    """An HTTP proxy to ``upstream`` (moto) on a free local port, serving in a thread."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        setattr(self._server, "proxy", self)  # noqa: B010 - how _Handler finds its proxy
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FaultProxy":
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, *rules: Rule) -> None:
        """Inject these faults from now on (each counting its matches from zero)."""
        with self._lock:
            for rule in rules:
                rule.matched = 0
            self.rules.extend(rules)

    def reset(self) -> None:
        """No rules, no calls seen."""
        with self._lock:
            self.rules.clear()
            self.calls.clear()

    def counts(self) -> Counter[str]:
        """Requests seen per action."""
        with self._lock:
            return Counter(call.action for call in self.calls)

    def answers(self, action: str) -> list[int | str]:
        """What each request for ``action`` got, in order."""
        with self._lock:
            return [call.answer for call in self.calls if call.action == action]

    def actions(self) -> list[str]:
        """Every request's action, in the order they came."""
        with self._lock:
            return [call.action for call in self.calls]

    def sdk_requests(self) -> set[str]:
        """The distinct ``amz-sdk-request`` headers seen: ``attempt=1; max=1`` and nothing else
        means botocore never retried a call itself."""
        with self._lock:
            return {call.sdk_request for call in self.calls}

    def _rule_for(self, action: str, region: str) -> Rule | None:
        with self._lock:
            return next((r for r in self.rules if r.fires(action, region)), None)

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def error_answer(
    rule: Rule, json_codes: bool, service: str, operation: str
) -> tuple[int, str, str]:
    """AWS's (HTTP status, error code, message) for ``rule``'s fault on ``service:operation``;
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
    iam = f"{_IAM_PREFIXES.get(service, service)}:{operation}"
    denied = (
        f"User: {ROLE} is not authorized to perform: {iam} because no identity-based policy"
        f" allows the {iam} action"
    )
    return (400, "AccessDeniedException", denied) if json_codes else (403, "AccessDenied", denied)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        proxy: FaultProxy = getattr(self.server, "proxy")  # noqa: B009
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        region, service = scope.groups() if scope else ("", "")
        target = self.headers.get("X-Amz-Target")
        # ECS: X-Amz-Target: AmazonEC2ContainerServiceV20141113.UpdateService; ELBv2: Action=…
        operation = (
            target.rpartition(".")[2] if target else parse_qs(body.decode()).get("Action", ["?"])[0]
        )
        action = f"{_CLIENT_NAMES.get(service, service)}.{operation}"
        sdk_request = self.headers.get("amz-sdk-request", "")
        rule = proxy._rule_for(action, region)
        if rule is not None and rule.fault in ("slow", "lost"):
            time.sleep(rule.seconds)
        if rule is None or rule.fault == "slow":
            status, headers, answer = self._forward(proxy.upstream, body)
            proxy._record(Call(action, region, status, sdk_request))
            self._send(status, headers, answer)
            return
        if rule.fault == "lost":
            self._forward(proxy.upstream, body)
        # CloudWatch speaks JSON to botocore but keeps its query protocol's error codes.
        query_mode = self.headers.get("x-amzn-query-mode") == "true"
        json_codes = target is not None and not query_mode
        status, code, message = error_answer(rule, json_codes, service, operation)
        proxy._record(Call(action, region, code, sdk_request))
        self._send_error(target is not None, query_mode, status, code, message)

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
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _NOT_FORWARDED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the proxy's ``calls`` say what happened."""
