"""Telling people when a deployment needs them: the ``notify`` tables of deploy.toml.

A webhook URL is a secret: it is never in deploy.toml, in a workflow's history, in its status
or in a log line. A notify table names the environment variable that holds it (``url_env``);
the activity that sends (activities/notify.py) reads that variable on the worker, at send time.
What is sent is models/notices.py; when, workflows/notifications.py.
"""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from models.strict import StrictModel

NotifyKind = Literal["slack", "webhook"]
NotifyEvent = Literal[
    "awaiting_approval", "switched", "succeeded", "failed", "rolled_back", "needs_a_person"
]
EVENTS: tuple[NotifyEvent, ...] = (
    "awaiting_approval",
    "switched",
    "succeeded",
    "failed",
    "rolled_back",
    "needs_a_person",
)
"""Every event, in the order a deployment can reach them; a notify table's default."""

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""An environment variable's name."""


class NotifyConfig(StrictModel):
    """One ``[[environments.<env>.notify]]`` table: where to tell whom about which events."""

    kind: NotifyKind
    """slack: a Slack incoming webhook (Block Kit blocks and a plain ``text``); webhook: one
    JSON document per event (docs/notifications.md)."""
    url_env: str
    """The NAME of the worker's environment variable holding the URL, e.g.
    SLACK_DEPLOY_WEBHOOK; the URL itself is a secret and never in this file."""
    events: list[NotifyEvent] = Field(default_factory=lambda: list(EVENTS))
    web_ui_url: str | None = None
    """The Temporal Web UI's base URL, e.g. http://localhost:8233: each message links the
    deployment there (``/namespaces/<namespace>/workflows/<workflow ID>/<run ID>/history``)."""

    @model_validator(mode="before")
    @classmethod
    def _no_url_here(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("url", "webhook_url"):
                if key in data:
                    raise ValueError(
                        f"{key}: a webhook URL is a secret and must not be in deploy.toml; put it"
                        " in an environment variable of the workers and name that variable in"
                        " url_env"
                    )
        return data

    @field_validator("url_env")
    @classmethod
    def _a_variable_name(cls, value: str) -> str:
        # Never echo the value: it may be the URL, pasted in by mistake.
        if not ENV_NAME.match(value):
            raise ValueError(
                "must be the name of an environment variable (letters, digits and _, such as"
                " SLACK_DEPLOY_WEBHOOK) that holds the URL on the workers, not the URL itself"
            )
        return value

    @field_validator("events")
    @classmethod
    def _some_events_once(cls, value: list[NotifyEvent]) -> list[NotifyEvent]:
        if not value:
            raise ValueError("list at least one event, or remove this notify table")
        repeated = sorted({e for e in value if value.count(e) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return value

    @field_validator("web_ui_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        if "/namespaces/" in value:
            raise ValueError(
                "give the Web UI's base URL (e.g. http://localhost:8233): the link adds"
                " /namespaces/<namespace>/workflows/<workflow ID> itself"
            )
        return value.rstrip("/")

    def wants(self, event: NotifyEvent) -> bool:
        """Whether this target hears of ``event``. One that lists ``failed`` or ``rolled_back``
        also hears ``needs_a_person``: what needs a person is never quieter than a failure."""
        if event == "needs_a_person":
            return any(e in self.events for e in ("needs_a_person", "failed", "rolled_back"))
        return event in self.events


def _each_target_once(targets: list[NotifyConfig]) -> list[NotifyConfig]:
    """The same kind to the same variable twice would send every message twice."""
    seen: set[tuple[str, str]] = set()
    for target in targets:
        key = (target.kind, target.url_env)
        if key in seen:
            raise ValueError(f"{target.kind} to {target.url_env} is listed more than once")
        seen.add(key)
    return targets


NotifyTargets = Annotated[list[NotifyConfig], AfterValidator(_each_target_once)]
"""An environment's ``notify`` list."""

SHARED_KEYS = ("notify",)
"""Keys of an environment that ``in_region`` may not change: a multi-region deployment sends
its messages once, from its parent (workflows/notifications.py)."""
