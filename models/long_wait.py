"""A deployment's long wait as its child workflow gets it and gives it back (workflows/long_wait.py).

One pair of models for every wait (health, bake, drain), generic in what a check looks at
(``InputT``, an activity's input) and what it sees (``SeenT``, the activity's result).
"""

from datetime import datetime, timedelta
from typing import Generic, TypeVar

from pydantic import BaseModel

from models.activities import CheckHealthInput
from models.colors import Color

InputT = TypeVar("InputT")
SeenT = TypeVar("SeenT")


class WaitProgress(BaseModel, Generic[SeenT]):
    """How a wait stands: carried from the deployment to its child and from one run of the
    child to the next, and the child's result and ``progress`` query."""

    checks: int = 0
    """The checks so far, the deployment's own included."""
    last: SeenT | None = None
    """What the latest check saw."""
    met: bool = False
    """True once a check met the wait's condition (healthy, an alarm in ALARM, no client left);
    False when the wait reached its deadline or a rollback stopped it."""


class WaitRequest(BaseModel, Generic[InputT, SeenT]):
    """Check ``check`` every ``poll_interval`` until the wait's condition is met or ``until``."""

    wait: str
    """Which wait (workflows/waits.py): ``health``, ``bake`` or ``drain``; the child's ID is
    ``<deployment_id>-<wait>``."""
    deployment_id: str
    color: Color
    """The color the wait is about: the new one (health, bake), the old one (drain)."""
    check: InputT
    poll_interval: timedelta
    until: datetime
    progress: WaitProgress[SeenT]


class HealthWaitInput(BaseModel):
    """What each check of the health wait looks at: a color's service, which counts as healthy
    only when it runs ``task_definition_arn`` (a healthy old revision is not the new version)."""

    service: CheckHealthInput
    task_definition_arn: str | None
