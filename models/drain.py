"""The drain of the old color's clients, which runs as its own workflow (workflows/drain.py)."""

from datetime import datetime, timedelta

from pydantic import BaseModel

from models.activities import ConnectionsInput
from models.colors import Color
from models.observations import ConnectionCount


class DrainProgress(BaseModel):
    """How the drain stands: carried from one run of the drain workflow to the next."""

    checks: int = 0
    last: ConnectionCount | None = None
    drained: bool = False
    """True once a count answered 0; False when the drain ended at its deadline."""


class DrainRequest(BaseModel):
    """Count ``color``'s clients every ``poll_interval`` until none are left or ``until``."""

    deployment_id: str
    color: Color
    connections: ConnectionsInput
    poll_interval: timedelta
    until: datetime
    progress: DrainProgress = DrainProgress()
