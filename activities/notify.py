"""Sending one notification: a Slack incoming-webhook message, or the notice as a JSON document,
POSTed to the URL in the worker's environment variable that the notify table names.

The URL is a secret: it is read here, at send time, and goes nowhere else. Not into the result,
not into an error message (Temporal records those in the workflow's history, and the worker logs
them), not into a log line: errors name the variable instead (``POST to $SLACK_DEPLOY_WEBHOOK:
HTTP 500: …``), and any text that comes back from the request is cleaned of the URL.

Attempts are retried by the workflow's ``NOTIFY_RETRY`` (workflows/options.py): no answer, a
5xx, 408 or 429 is retried; a missing variable, another 4xx or a redirect is not.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException, InvalidURL
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import http
from models.notices import Command, Notice, NotificationInput, RegionNotice
from models.notifications import NotifyEvent

USER_AGENT = "bluegreen-deployments"
RETRYABLE_STATUSES = (408, 429)
"""Retried besides 5xx: the receiver timed out, or asks to slow down (Slack's rate limit)."""


@activity.defn
def send_notification(arg: NotificationInput) -> None:
    """POST ``arg.notice`` to the URL in ``$<arg.url_env>``: as a Slack message (``slack``) or
    as the notice's JSON (``webhook``)."""
    url = _url(arg.url_env)
    document = slack_message(arg.notice) if arg.kind == "slack" else webhook_document(arg.notice)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-BlueGreen-Event": arg.notice.event,
        "X-BlueGreen-Notification-Id": arg.notice.notification_id,
    }
    body = json.dumps(document, ensure_ascii=False).encode()
    _post(url, arg.url_env, body, headers, arg.timeout.total_seconds())
    activity.logger.info(
        "notified %s via %s: %s", arg.kind, arg.url_env, arg.notice.title, extra={"step": "notify"}
    )


def webhook_document(notice: Notice) -> dict[str, Any]:
    """The webhook kind's JSON document: the notice, field by field (docs/notifications.md)."""
    document: dict[str, Any] = notice.model_dump(mode="json")
    return document


# --- the URL, and the POST ------------------------------------------------------------------------


def _url(name: str) -> str:
    """The URL in ``$name``; a non-retryable error naming the variable (never its value)."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ApplicationError(
            f"the worker's environment has no {name}: set it, on every worker, to the URL"
            " this notification goes to",
            type="NotifyUrlMissing",
            non_retryable=True,
        )
    if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
        raise ApplicationError(
            f"{name} does not hold an http:// or https:// URL",
            type="NotifyUrlInvalid",
            non_retryable=True,
        )
    return value


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook answers; it does not send us elsewhere (where the body would not follow)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(url: str, name: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    where = f"POST to ${name}"
    try:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(http.MAX_BODY)
            return
    except urllib.error.HTTPError as err:
        with err:
            status, text = err.code, err.read(http.MAX_BODY).decode("utf-8", errors="replace")
    except (ValueError, InvalidURL):
        raise ApplicationError(
            f"{name} does not hold a valid URL", type="NotifyUrlInvalid", non_retryable=True
        ) from None
    except urllib.error.URLError as err:
        raise ApplicationError(
            f"{where}: no answer: {_cleaned(str(err.reason), url, name)}",
            type="NotifyConnectionError",
        ) from None
    except (OSError, HTTPException) as err:  # a timeout or a reset while reading the answer
        said = _cleaned(str(err), url, name) or "no answer"
        raise ApplicationError(
            f"{where}: {type(err).__name__}: {said}", type="NotifyConnectionError"
        ) from None
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    raise ApplicationError(
        f"{where}: HTTP {status}: {_cleaned(http.snippet(text), url, name)}",
        type=f"HTTP{status}",
        non_retryable=not retryable,
    )


def _cleaned(text: str, url: str, name: str) -> str:
    """``text`` without the URL or its secret parts (path, query, credentials): ``$name``."""
    parts = urllib.parse.urlsplit(url)
    secret = [
        url,
        url.rstrip("/"),
        parts.path + (f"?{parts.query}" if parts.query else ""),
        parts.path,
        parts.query,
        parts.netloc if "@" in parts.netloc else "",
    ]
    for part in sorted({p for p in secret if len(p) > 1}, key=len, reverse=True):
        text = text.replace(part, f"${name}")
    return text


# --- the Slack message -----------------------------------------------------------------------------

_EMOJI: dict[NotifyEvent, str] = {
    "awaiting_approval": ":raised_hand:",
    "switched": ":twisted_rightwards_arrows:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "needs_a_person": ":rotating_light:",
}
_SECTION_TEXT = 2900
"""Slack takes up to 3,000 characters in a section's text."""
_MAX_BLOCKS = 50


def slack_message(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: Block Kit ``blocks``, and a plain ``text`` for
    notifications and clients that show no blocks."""
    n = notice
    blocks: list[dict[str, Any]] = [_section(f"{_EMOJI[n.event]} *{_escape(n.title)}*")]
    blocks.append({"type": "section", "fields": [_text(f) for f in _fields(n)]})
    if n.reason:
        blocks.append(_section(f"*Why:* {_escape(n.reason)}"))
    if n.event == "awaiting_approval" and n.awaiting_approval_until:
        who = (
            f"; someone other than {_escape(n.requested_by)}, who started it, must approve"
            if n.require_different_approver
            else ""
        )
        until = f"{n.awaiting_approval_until:%Y-%m-%d %H:%M} UTC"
        blocks.append(_section(f"Waiting for approval until {until}{who}."))
    if n.approval:
        comment = f": {_escape(n.approval.comment)}" if n.approval.comment else ""
        blocks.append(_section(f"Approved by {_escape(n.approval.by)}{comment}"))
    blocks += [_section(line) for line in _regions(n)]
    if n.needs_a_person:
        blocks.append(
            _section(
                ":rotating_light: *Not restored, needs a person:*\n"
                + "\n".join(f"• {_escape(e)}" for e in n.needs_a_person)
            )
        )
    if n.warnings:
        blocks.append(_section("*Warnings:*\n" + "\n".join(f"• {_escape(w)}" for w in n.warnings)))
    blocks += [_section(_command(c)) for c in n.commands]
    context = [f"`{_escape(n.deployment_id)}`", f"started by {_escape(n.requested_by)}"]
    if n.web_ui:
        context.insert(0, f"<{n.web_ui}|Open in the Temporal Web UI>")
    blocks.append({"type": "context", "elements": [_text(" · ".join(context))]})
    if len(blocks) > _MAX_BLOCKS:
        blocks = [*blocks[: _MAX_BLOCKS - 1], blocks[-1]]
    text = n.title + (f": {n.reason}" if n.reason else "")
    if len(text) > _SECTION_TEXT:
        text = text[: _SECTION_TEXT - 1] + "…"
    return {"text": _escape(text), "blocks": blocks}


def _fields(n: Notice) -> list[str]:
    regions = ", ".join(n.regions)
    fields = [
        f"*Service*\n{_escape(n.service)}",
        f"*Environment*\n{_escape(n.environment)}",
        f"*Version*\n{_escape(n.version)} (`{_escape(n.image)}`)",
        f"*Region{'s' if len(n.regions) > 1 else ''}*\n{_escape(regions)}",
    ]
    one = n.details[0] if len(n.details) == 1 else None
    if one and one.target_color:
        fields.append(f"*Colors*\n{_colors(one, n.version)}")
    fields.append(f"*State*\n{n.state.value}, {n.phase.value}")
    return fields


def _colors(d: RegionNotice, version: str) -> str:
    """``blue (1) → green (2), traffic on green``: the old color's version, the one deployed."""
    old, new = d.active_color_before, d.target_color
    before = d.versions_before.get(old) if old else None
    return (
        f"{old} ({_escape(before or 'no version')}) → {new} ({_escape(version)}),"
        f" traffic on {d.traffic_on or '?'}"
    )


def _regions(n: Notice) -> list[str]:
    """A section per region worth a word: with several regions, every one (its state, colors,
    what was restored); with one, what was restored."""
    several = len(n.details) > 1
    sections = []
    for d in n.details:
        lines = []
        if several:
            wave = f" (wave {d.wave})" if d.wave else ""
            state = f"{d.state.value}, {d.phase.value}" if d.state and d.phase else "not started"
            colors = f"; {_colors(d, n.version)}" if d.target_color else ""
            lines.append(f"*{d.region}*{wave}: {state}{colors}")
            if d.reason and d.reason != n.reason:
                lines.append(f"why: {_escape(d.reason)}")
        if d.restored:
            lines.append("*Restored:* " + "; ".join(_escape(step) for step in d.restored))
        if lines:
            sections.append("\n".join(lines))
    return sections


def _command(c: Command) -> str:
    text = f"*{c.action.capitalize()}:*\n```{_escape(c.client)}```"
    if c.temporal:
        text += f"\nor with the Temporal CLI:\n```{_escape(c.temporal)}```"
    return text


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": _text(mrkdwn)}


def _text(mrkdwn: str) -> dict[str, str]:
    if len(mrkdwn) > _SECTION_TEXT:
        mrkdwn = mrkdwn[: _SECTION_TEXT - 1] + "…"
    return {"type": "mrkdwn", "text": mrkdwn}


def _escape(text: str) -> str:
    """Slack's three control characters, as its message formatting asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
