"""The notice a deployment sends when it needs people (``notify`` in deploy.toml,
models/notifications.py): the webhook kind's JSON document, from which activities/notify.py also
makes the Slack message; and the activity's input.
"""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from models.colors import Color
from models.deployment_phase import Phase, State
from models.messages import Approval, RollbackRecord
from models.notifications import NotifyEvent, NotifyKind

SCHEMA_VERSION = 1
"""The webhook document's ``schema_version``: a change that is not an added field raises it."""


class Command(BaseModel):
    """Something a person can do now, as ``client.py`` and as the Temporal CLI say it."""

    action: str
    """What it does: "approve", "roll back", "status", "switch back"."""
    client: str
    """e.g. ``python client.py approve deploy-game-prod``."""
    temporal: str | None = None
    """The Temporal CLI's equivalent, where there is one."""


class RegionNotice(BaseModel):
    """One region of the deployment, as it stood when the notice was made."""

    region: str
    workflow_id: str
    wave: int | None = None
    """1-based, for a region of a multi-region deployment; None for a one-region deployment."""
    state: State | None = None
    """None: the region had not started."""
    phase: Phase | None = None
    active_color_before: Color | None = None
    target_color: Color | None = None
    traffic_on: Color | None = None
    """Where the public traffic is (as far as the deployment knows)."""
    versions_before: dict[Color, str | None] = {}
    versions_after: dict[Color, str | None] = {}
    traffic_plan: list[int] = []
    """The new color's percent at each step of the switch ([traffic]); empty before it."""
    traffic_step: int = 0
    """Steps set so far (1-based); ``len(traffic_plan)`` once all traffic is on the new color."""
    awaiting_step_approval: bool = False
    """The current step waits for ``approve``."""
    reason: str | None = None
    """Why it failed or was rolled back."""
    failed_in: Phase | None = None
    restored: list[str] = []
    """What was put back, in order: "traffic back to blue", "scaled green to 0", …"""
    not_restored: list[str] = []
    """Restoring steps that failed: these need a person."""
    warnings: list[str] = []


class Notice(BaseModel):
    """One notification: the webhook kind's JSON document, and what the Slack message says.

    Documented field by field in docs/notifications.md; new fields may be added, none is
    renamed or removed without raising ``schema_version``.
    """

    schema_version: int = SCHEMA_VERSION
    notification_id: str
    """The same for every attempt and every target of one notification: a receiver that sees
    it twice (a retry after a lost answer) can drop the second."""
    event: NotifyEvent
    scope: Literal["deployment", "region"] = "deployment"
    """region: about one region of a multi-region deployment whose other regions go on."""
    title: str
    """One line: ``switched game 2 → green (prod, us-west-2)``."""
    at: datetime
    deployment_id: str
    run_id: str
    namespace: str
    service: str
    environment: str
    version: str
    image: str
    regions: list[str]
    """The regions this notice is about."""
    state: State
    """The deployment's state (``running`` until it ends)."""
    phase: Phase
    """The deployment's phase (a multi-region deployment's overall phase)."""
    requested_by: str
    reason: str | None = None
    approval: Approval | None = None
    rollback: RollbackRecord | None = None
    awaiting_approval_until: datetime | None = None
    require_different_approver: bool = False
    """Four eyes: whoever started the deployment (``requested_by``) may not approve it."""
    needs_a_person: list[str] = []
    """Every restoring step that failed (``<region>: …`` with several regions)."""
    details: list[RegionNotice] = []
    warnings: list[str] = []
    commands: list[Command] = []
    web_ui: str | None = None
    """The deployment in the Temporal Web UI, when ``web_ui_url`` is configured."""


class NotificationInput(BaseModel):
    """The activity's input: which kind of message, the NAME of the variable holding the URL
    (never the URL), and the notice."""

    kind: NotifyKind
    url_env: str
    notice: Notice
    timeout: timedelta = timedelta(seconds=10)
    """Of the HTTP request, per attempt."""
