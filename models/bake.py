"""The bake's alarm checks, which run as their own workflow (workflows/bake.py)."""

from datetime import datetime, timedelta

from pydantic import BaseModel

from models.activities import AlarmsInput
from models.observations import AlarmState


class BakeProgress(BaseModel):
    """How the bake stands: carried from one run of the alarm watch to the next."""

    checks: int = 0
    last: list[AlarmState] = []
    fired: bool = False
    """True once a check found an alarm in ALARM; False when the bake lasted its duration."""


class BakeRequest(BaseModel):
    """Read ``alarms`` every ``poll_interval`` until one is in ALARM or ``until``."""

    deployment_id: str
    alarms: AlarmsInput
    poll_interval: timedelta
    until: datetime
    progress: BakeProgress = BakeProgress()
