"""The wait for the new color's health, which runs as its own workflow (workflows/health.py)."""

from datetime import datetime, timedelta

from pydantic import BaseModel

from models.activities import CheckHealthInput
from models.colors import Color
from models.observations import HealthObservation


class HealthProgress(BaseModel):
    """How the wait stands: carried from one run of the health wait to the next."""

    checks: int = 0
    last: HealthObservation | None = None
    healthy: bool = False
    """True once a check found the service healthy on the new revision."""


class HealthRequest(BaseModel):
    """Check ``color`` every ``poll_interval`` until it is healthy on ``task_definition_arn``."""

    deployment_id: str
    color: Color
    check: CheckHealthInput
    task_definition_arn: str | None
    poll_interval: timedelta
    until: datetime
    progress: HealthProgress = HealthProgress()
