"""What the activities see: health, connections, integration check results, SSM and router state."""

from datetime import datetime

from pydantic import BaseModel

from models.colors import Color


class HealthObservation(BaseModel):
    """One health check of a color's ECS service (and its target group, where configured)."""

    healthy: bool
    reason: str
    """Why not healthy, or "healthy"; shown in the status and the report."""
    running_count: int
    desired_count: int
    pending_count: int
    rollout_state: str | None
    task_definition_arn: str | None
    targets_healthy: int | None = None
    targets_total: int | None = None
    checked_at: datetime


def task_definition_name(arn: str) -> str:
    """``family:revision`` of a task definition ARN, as people name it.

    >>> task_definition_name("arn:aws:ecs:us-west-2:123456789012:task-definition/game:3")
    'game:3'
    """
    return arn.rpartition("/")[2]


class ConnectionCount(BaseModel):
    """One count of the clients still connected to a version."""

    version: str
    count: int | None
    """None when the count could not be read; ``error`` says why."""
    error: str | None = None
    checked_at: datetime


class AlarmState(BaseModel):
    """One CloudWatch alarm as DescribeAlarms reports it."""

    name: str
    state: str
    """OK, ALARM or INSUFFICIENT_DATA; only ALARM rolls a deployment back."""
    reason: str
    updated_at: datetime | None = None


class CheckResult(BaseModel):
    """One integration check against the new color."""

    name: str
    url: str
    passed: bool
    status: int | None
    detail: str
    elapsed_ms: int


class ColorState(BaseModel):
    """What SSM Parameter Store says: the active color and each color's version."""

    active_color: Color
    versions: dict[Color, str | None]


class RouterWeights(BaseModel):
    """The share of traffic each color receives, as the router reports it."""

    blue: int
    green: int

    @classmethod
    def split(cls, color: Color, percent: int) -> "RouterWeights":
        """``percent`` of the traffic to ``color``, the rest to the other color."""
        other: Color = "green" if color == "blue" else "blue"
        return cls.model_validate({color: percent, other: 100 - percent})

    def percent_of(self, color: Color) -> int:
        """``color``'s share of the traffic, in percent of both weights."""
        total = self.blue + self.green
        return round(100 * (self.blue if color == "blue" else self.green) / total) if total else 0

    def serving(self) -> Color | None:
        """The one color that receives all the traffic, or None when it is split."""
        if self.blue > 0 and self.green == 0:
            return "blue"
        if self.green > 0 and self.blue == 0:
            return "green"
        return None
