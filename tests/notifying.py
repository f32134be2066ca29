"""What the notification tests share: the notify tables, the variables holding a local
receiver's URLs, a worker running the real notification activity, and the search of a workflow's
history for a secret (payloads decoded: the history's JSON keeps them in base64)."""

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities import notify
from local.notify_receiver import NotificationReceiver
from local.processes import environ
from models.notices import NotificationInput
from runtime.heartbeats import ActivityHeartbeats
from tests.workflows.driving import Fakes
from workflows import ALL_WORKFLOWS

SLACK_ENV = "BG_TEST_SLACK_WEBHOOK"
WEBHOOK_ENV = "BG_TEST_DEPLOY_WEBHOOK"
SLACK_SECRET = "xoxTESTs3cr3tT0ken"
"""The secret part of the Slack stand-in's URL, as in a real incoming webhook's path."""
SLACK_PATH = f"/services/T0TEST/B0TEST/{SLACK_SECRET}"
WEBHOOK_PATH = "/deploy-hook"
WEB_UI = "http://localhost:8233"


def notify_tables(webhook_events: list[str] | None = None) -> list[dict[str, Any]]:
    """Slack (every event, linking the Web UI) and a webhook (``webhook_events``, or all)."""
    webhook: dict[str, Any] = {"kind": "webhook", "url_env": WEBHOOK_ENV}
    if webhook_events is not None:
        webhook["events"] = webhook_events
    return [{"kind": "slack", "url_env": SLACK_ENV, "web_ui_url": WEB_UI}, webhook]


def secrets(receiver: NotificationReceiver) -> dict[str, str]:
    """The variables holding the receiver's URLs, as the worker's environment has them."""
    return {SLACK_ENV: receiver.url(SLACK_PATH), WEBHOOK_ENV: receiver.url(WEBHOOK_PATH)}


@contextmanager
def receiving(answers: dict[str, list[int]] | None = None) -> Iterator[NotificationReceiver]:
    """A receiver, its URLs in this process's environment (where the worker's threads read
    them) for as long as it runs."""
    with NotificationReceiver(answers) as receiver, environ(secrets(receiver)):
        yield receiver


@dataclass
class Notifying:
    """``aws``'s fake activities and the real ``send_notification``."""

    aws: Fakes

    def activities(self) -> list[Any]:
        return [*self.aws.activities(), notify.send_notification]


@dataclass
class FakeNotifications:
    """``aws``'s fake activities and a fake ``send_notification`` that records what it is
    asked to send, and fails every attempt with ``failing``: for the recorded histories."""

    aws: Fakes
    failing: bool = False
    sent: list[NotificationInput] = field(default_factory=list)

    def activities(self) -> list[Any]:
        return [*self.aws.activities(), self.send_notification]

    @activity.defn(name="send_notification")
    async def send_notification(self, arg: NotificationInput) -> None:
        self.sent.append(arg)
        if self.failing:
            raise ApplicationError(f"POST to ${arg.url_env}: HTTP 503: unavailable", type="HTTP503")


@asynccontextmanager
async def notifying_worker(client: Client, aws: Fakes) -> AsyncIterator[str]:
    """A worker with every workflow, ``aws``'s fakes and the real notification activity (in
    threads, as worker.py runs it); yields its task queue."""
    task_queue = f"notify-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=ALL_WORKFLOWS,
            activities=Notifying(aws).activities(),
            activity_executor=executor,
            interceptors=[ActivityHeartbeats()],
        ):
            yield task_queue


def history_text(history: WorkflowHistory) -> str:
    """The history's JSON with every payload decoded after it: inputs, results, details."""
    document = json.loads(history.to_json())
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                decoded.append(base64.b64decode(node["data"]).decode("utf-8", errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return "\n".join([history.to_json(), *decoded])


def assert_no_secret(text: str, receiver: NotificationReceiver) -> None:
    """None of the receiver's URLs, nor the secret part of Slack's, nor its address is in
    ``text``; a variable's name is (so the search does look where the notices are)."""
    for secret in [*secrets(receiver).values(), SLACK_SECRET, f"127.0.0.1:{receiver.port}"]:
        assert secret not in text, f"{secret} found"
    assert SLACK_ENV in text or WEBHOOK_ENV in text


def notify_activities(history: WorkflowHistory) -> int:
    """How many send_notification activities the history scheduled."""
    return sum(
        1
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "send_notification"
    )
