"""Messages people send to a running deployment (approve, rollback) and what it records of them.

The same models arrive from ``client.py`` and from the Temporal CLI, e.g.
``temporal workflow update execute --name approve --input '{"by": "alice"}'``.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from models.deployment_phase import Phase
from models.strict import StrictModel

UNKNOWN = "unknown"
"""Who sent a message, or started a deployment, when nobody said."""


class ApproveRequest(StrictModel):
    """Let a deployment waiting for approval switch traffic."""

    by: str = Field(default=UNKNOWN, min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)


class RollbackRequest(StrictModel):
    """Stop a deployment and put production back as it was, by the rule of its phase."""

    reason: str = Field(min_length=1, max_length=2000)
    by: str = Field(default=UNKNOWN, min_length=1, max_length=200)


class Approval(BaseModel):
    """Who let the deployment switch, when and why; ``by`` is "timeout" for on_timeout=proceed."""

    by: str
    comment: str
    at: datetime


class StepApproval(Approval):
    """An approval that let a traffic step go on to the next one."""

    step: int
    """The step it let go on, 1 for the first."""
    percent: int
    """The new color's share of the traffic at that step."""


class RollbackRecord(BaseModel):
    """A rollback someone asked for, and the phase the deployment was in when it arrived."""

    by: str
    reason: str
    at: datetime
    phase: Phase | None = None
    """The phase it arrived in (one region); None for a multi-region parent."""
