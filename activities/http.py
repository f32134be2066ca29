"""The one HTTP helper the activities use: the standard library, a timeout, a bounded body."""

import http.client
import urllib.error
import urllib.request
from typing import NamedTuple

from temporalio.exceptions import ApplicationError

MAX_BODY = 64 * 1024
"""Bytes of a response body read at most: enough for a status page, bounded for a bad one."""


class Response(NamedTuple):
    status: int
    body: str


def request(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10
) -> Response:
    """Send one request; any HTTP status is an answer, not an exception::

        request("http://10.0.1.5:8080/connections", headers={"X-Game-Version": "1"}, timeout=5)
        # Response(status=200, body='3')

    Raises a retryable ApplicationError when no answer came (refused, reset, timed out), and a
    non-retryable one for a URL that is not http(s).
    """
    if not url.startswith(("http://", "https://")):
        raise ApplicationError(
            f"{method} {url}: only http:// and https:// URLs are allowed",
            type="InvalidUrl",
            non_retryable=True,
        )
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return Response(answer.status, _text(answer.read(MAX_BODY)))
    except urllib.error.HTTPError as err:
        with err:
            return Response(err.code, _text(err.read(MAX_BODY)))
    except http.client.InvalidURL as err:
        raise ApplicationError(
            f"{method} {url}: {err}", type="InvalidUrl", non_retryable=True
        ) from err
    except urllib.error.URLError as err:
        raise ApplicationError(f"{method} {url}: {err.reason}", type="HttpConnectionError") from err
    except (OSError, http.client.HTTPException) as err:
        # TimeoutError and ConnectionError while reading the answer, a malformed status line.
        raise ApplicationError(
            f"{method} {url}: {type(err).__name__}: {err or 'no answer'}",
            type="HttpConnectionError",
        ) from err


def raise_for_status(response: Response, method: str, url: str) -> None:
    """A non-2xx answer as an ApplicationError: retryable for 5xx and 429, else non-retryable."""
    if 200 <= response.status < 300:
        return
    retryable = response.status >= 500 or response.status == 429
    raise ApplicationError(
        f"{method} {url}: HTTP {response.status}: {snippet(response.body)}",
        type=f"HTTP{response.status}",
        non_retryable=not retryable,
    )


def snippet(body: str, limit: int = 200) -> str:
    """The start of a body, on one line, for a message."""
    text = " ".join(body.split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + "…"


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
