"""The old color's long-lived sessions: how many are left, and telling them to reconnect.

The service answers ``GET <url>`` (with the version in a header) with the number of clients
still connected to that version: a bare integer (``3``) or JSON (``{"connections": 3}``).
"""

import json
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import http
from models.activities import ConnectionsInput
from models.observations import ConnectionCount


@activity.defn
def count_connections(arg: ConnectionsInput) -> ConnectionCount:
    """How many clients of ``arg.version`` are still connected.

    With ``arg.remind_url``, clients still there are told again to reconnect: a load balancer
    applies a weight change within seconds, not at once, so a client that reconnected right
    after the first notice may have landed on this color again, as a new session nobody told.
    The service ignores a second notice to a client already told; a failed reminder is logged,
    not an error: the count is what the drain needs.
    """
    body = _call("GET", arg)
    count = parse_count(body)
    if count is None:
        raise ApplicationError(
            f"GET {arg.url}: expected a number of connections (3 or"
            f' {{"connections": 3}}), got: {http.snippet(body)}',
            type="UnexpectedResponse",
            non_retryable=True,
        )
    if count and arg.remind_url:
        try:
            _call("POST", arg.model_copy(update={"url": arg.remind_url}))
        except ApplicationError as err:
            activity.logger.warning("reconnect reminder failed: %s", err.message)
    return ConnectionCount(version=arg.version, count=count, checked_at=datetime.now(UTC))


@activity.defn
def notify_reconnect(arg: ConnectionsInput) -> None:
    """Tell the clients of ``arg.version`` to reconnect once their game is done."""
    _call("POST", arg)


def _call(method: str, arg: ConnectionsInput) -> str:
    response = http.request(
        arg.url,
        method=method,
        headers={arg.version_header: arg.version},
        timeout=arg.timeout.total_seconds(),
    )
    http.raise_for_status(response, method, arg.url)
    return response.body


def parse_count(body: str) -> int | None:
    """The count in ``3`` or ``{"connections": 3}``; None for anything else."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        data = data.get("connections")
    # bool is an int to Python, not a count to anyone.
    if isinstance(data, int) and not isinstance(data, bool) and data >= 0:
        return data
    return None
