"""Switching traffic back to the other, still running color without a new deployment."""

from datetime import datetime

from pydantic import BaseModel, Field

from models.colors import Color
from models.config import EnvironmentConfig
from models.messages import UNKNOWN
from models.observations import HealthObservation
from models.strict import StrictModel


class SwitchRequest(StrictModel):
    """Move one environment's traffic to its inactive color, if that color runs and is healthy."""

    service: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    target: EnvironmentConfig
    requested_by: str = UNKNOWN
    reason: str = ""


class SwitchResult(BaseModel):
    """What a switch did: from which color to which, and the health check that allowed it."""

    switch_id: str
    service: str
    environment: str
    region: str
    from_color: Color
    to_color: Color
    versions: dict[Color, str | None]
    health: HealthObservation
    switched_at: datetime
    requested_by: str
    reason: str
    warnings: list[str] = []
