"""The notification activity against a local receiver (local/notify_receiver.py): what Slack and
a webhook receive, and how each failure is told, never with the URL in it."""

import html
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import _cleaned, send_notification, slack_message
from local.notify_receiver import NotificationReceiver
from local.processes import environ, free_port
from models.deployment_phase import Phase, State
from models.notices import Command, Notice, NotificationInput, RegionNotice
from models.notifications import NotifyKind

VARIABLE = "BG_TEST_NOTIFY_URL"
SECRET_PATH = "/services/T0/B0/s3cr3t-path"


def notice(**changes: object) -> Notice:
    fields: dict[str, object] = {
        "notification_id": "deploy-game-prod/run-1/awaiting_approval",
        "event": "awaiting_approval",
        "title": "awaiting approval: game 2 → green (prod, us-west-2)",
        "at": datetime(2026, 5, 1, 10, 41, tzinfo=UTC),
        "deployment_id": "deploy-game-prod",
        "run_id": "run-1",
        "namespace": "default",
        "service": "game",
        "environment": "prod",
        "version": "2",
        "image": "game:2",
        "regions": ["us-west-2"],
        "state": State.RUNNING,
        "phase": Phase.AWAITING_APPROVAL,
        "requested_by": "alice",
        "awaiting_approval_until": datetime(2026, 5, 2, 10, 41, tzinfo=UTC),
        "require_different_approver": True,
        "details": [
            RegionNotice(
                region="us-west-2",
                workflow_id="deploy-game-prod",
                state=State.RUNNING,
                phase=Phase.AWAITING_APPROVAL,
                active_color_before="blue",
                target_color="green",
                traffic_on="blue",
                versions_before={"blue": "1", "green": None},
                versions_after={"blue": "1", "green": "2"},
            )
        ],
        "commands": [
            Command(
                action="approve",
                client="python client.py approve deploy-game-prod",
                temporal="temporal workflow update execute --workflow-id deploy-game-prod"
                """ --name approve --input '{"by": "your-name"}'""",
            )
        ],
        "web_ui": "http://localhost:8233/namespaces/default/workflows/deploy-game-prod/run-1/history",
    }
    return Notice.model_validate(fields | changes)


def send(kind: NotifyKind = "webhook", sent: Notice | None = None) -> None:
    arg = NotificationInput(kind=kind, url_env=VARIABLE, notice=sent or notice())
    ActivityEnvironment().run(send_notification, arg)


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver({"/500": [500], "/404": [404], "/429": [429], "/302": [302]}) as r:
        yield r


def failure(url: str, kind: NotifyKind = "webhook") -> ApplicationError:
    """What sending to ``url`` raises; never the URL in it."""
    with environ({VARIABLE: url}), pytest.raises(ApplicationError) as raised:
        send(kind)
    error = raised.value
    if url:
        assert url not in str(error) and "s3cr3t" not in str(error), str(error)
    return error


def test_a_webhook_gets_the_notice_as_json_with_its_event_and_id(
    receiver: NotificationReceiver,
) -> None:
    with environ({VARIABLE: receiver.url(SECRET_PATH)}):
        send("webhook")
    (got,) = receiver.received
    assert got.path == SECRET_PATH
    assert got.kind == "webhook" and got.event == "awaiting_approval"
    assert got.notification_id == "deploy-game-prod/run-1/awaiting_approval"
    assert got.body == notice().model_dump(mode="json")
    assert got.body["schema_version"] == 1
    assert got.headers["content-type"] == "application/json; charset=utf-8"


def test_slack_gets_blocks_and_a_plain_text(receiver: NotificationReceiver) -> None:
    with environ({VARIABLE: receiver.url(SECRET_PATH)}):
        send("slack")
    (got,) = receiver.received
    assert got.kind == "slack"
    assert got.text() == "awaiting approval: game 2 → green (prod, us-west-2)"
    blocks = got.body["blocks"]
    assert blocks[0]["text"]["text"].startswith(":raised_hand: *awaiting approval: game 2")
    everything = got.everything()
    assert "blue (1) → green (2), traffic on blue" in everything
    assert "someone other than alice, who started it, must approve" in everything
    assert "```python client.py approve deploy-game-prod```" in everything
    assert (
        "<http://localhost:8233/namespaces/default/workflows/deploy-game-prod/run-1/history|"
        in (everything)
    )
    assert blocks[-1]["type"] == "context"


def test_slack_text_is_escaped_and_bounded() -> None:
    long_reason = "a <b> & c " * 1000
    message = slack_message(notice(event="failed", reason=long_reason, title="failed: x"))
    assert "&lt;b&gt; &amp; c" in message["text"]
    assert "<b>" not in str(message)
    sections = [b["text"]["text"] for b in message["blocks"] if "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    assert len(html.unescape(message["text"])) <= 2900


@pytest.mark.parametrize(
    ("path", "retryable"),
    [("/500", True), ("/429", True), ("/404", False), ("/302", False)],
)
def test_an_error_answer_names_the_variable_and_says_whether_to_retry(
    receiver: NotificationReceiver, path: str, retryable: bool
) -> None:
    error = failure(receiver.url(path))
    status = path.strip("/")
    assert error.message == f"POST to ${VARIABLE}: HTTP {status}: failing on purpose"
    assert error.type == f"HTTP{status}"
    assert error.non_retryable is not retryable
    # A redirect is not followed: one request.
    assert len(receiver.received) == 1


def test_no_answer_is_retryable_without_the_address() -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    error = failure(url)
    assert error.message.startswith(f"POST to ${VARIABLE}: no answer:")
    assert error.type == "NotifyConnectionError" and not error.non_retryable


@pytest.mark.parametrize("unset", [True, False], ids=["unset", "empty"])
def test_a_variable_the_worker_lacks_is_not_retried_and_named(
    unset: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if unset:
        monkeypatch.delenv(VARIABLE, raising=False)
        with pytest.raises(ApplicationError) as raised:
            send()
        error = raised.value
    else:
        error = failure("")
    assert error.message == (
        f"the worker's environment has no {VARIABLE}: set it, on every worker, to the URL this"
        " notification goes to"
    )
    assert error.type == "NotifyUrlMissing" and error.non_retryable


@pytest.mark.parametrize(
    "value", ["hooks.slack.com/services/T0/B0/s3cr3t", "ftp://x/s3cr3t", "http://x/ s3cr3t"]
)
def test_a_variable_without_a_url_is_not_retried_nor_echoed(value: str) -> None:
    error = failure(value)
    assert error.message == f"{VARIABLE} does not hold an http:// or https:// URL"
    assert error.non_retryable and "s3cr3t" not in str(error)


def test_a_url_urllib_cannot_use_is_not_echoed() -> None:
    error = failure("http://127.0.0.1:notaport/s3cr3t")
    assert error.message == f"{VARIABLE} does not hold a valid URL"
    assert error.non_retryable


def test_text_coming_back_is_cleaned_of_the_url_and_its_parts() -> None:
    url = "https://user:pw@hooks.example.com/services/T0/B0/s3cr3t?token=abc"
    said = (
        f"no route to {url}; /services/T0/B0/s3cr3t?token=abc; token=abc; user:pw@hooks.example.com"
    )
    cleaned = _cleaned(said, url, "HOOK")
    assert "s3cr3t" not in cleaned and "abc" not in cleaned and "pw" not in cleaned
    assert "$HOOK" in cleaned


def test_the_log_line_names_the_variable_not_the_url(
    receiver: NotificationReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with environ({VARIABLE: receiver.url(SECRET_PATH)}):
        send("slack")
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"notified slack via {VARIABLE}: awaiting approval" in line for line in lines)
    assert not any("s3cr3t" in line or str(receiver.port) in line for line in lines)
