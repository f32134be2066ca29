"""A deployment: what is asked for, and what the workflow reports about itself."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from models.analysis import MetricTally
from models.colors import Color, other_color
from models.config import EnvironmentConfig
from models.deployment_phase import Phase as Phase
from models.deployment_phase import State as State
from models.messages import UNKNOWN, Approval, RollbackRecord, StepApproval
from models.observations import (
    AlarmState,
    CheckResult,
    ConnectionCount,
    HealthObservation,
    RouterWeights,
)
from models.strict import StrictModel

# Versions and images end up in SSM, task definitions and HTTP headers: no spaces or shell
# characters, so nothing downstream has to quote them.
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")


def check_version(value: str) -> str:
    """A version label: SSM value, HTTP header, task definition tag."""
    if not _VERSION.match(value):
        raise ValueError(
            f"{value!r} is not a version: use up to 128 letters, digits and . _ + -,"
            " starting with a letter or digit"
        )
    return value


def check_image(value: str) -> str:
    """A container image reference."""
    if not _IMAGE.match(value):
        raise ValueError(
            f"{value!r} is not a container image reference such as"
            " 123456789012.dkr.ecr.us-west-2.amazonaws.com/game:2"
        )
    return value


Version = Annotated[str, AfterValidator(check_version)]
Image = Annotated[str, AfterValidator(check_image)]


class DeploymentRequest(StrictModel):
    """Everything one deployment of one service to one environment and region needs."""

    service: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    version: Version
    image: Image
    target: EnvironmentConfig
    switch_active_cluster: bool = True
    """False: deploy and test the inactive color, then stop, without switching traffic."""
    shutdown_inactive_cluster: bool = True
    """False: leave the old color running after the switch (for an instant switch back)."""
    require_approval: bool = False
    """Wait for an approve message (``environment.approval``) before switching traffic."""
    switch_together: bool = False
    """Part of a multi-region deployment: wait at the gate until the parent releases it."""
    requested_by: str = UNKNOWN
    search_attributes: bool = False
    """The namespace has the BlueGreen* search attributes (``workflows/search_attributes.py``)
    and the starter set them: keep phase and state up to date. False (a namespace without
    them, and every deployment started before they existed): leave them alone."""


class PhaseEntry(BaseModel):
    """When a phase was entered."""

    phase: Phase
    entered_at: datetime


class FailureReport(BaseModel):
    """Why a deployment failed and what was done to put production back as it was."""

    phase: Phase
    reason: str
    error_type: str | None = None
    compensation: list[str] = []
    """What was restored, in order, e.g. "traffic back to blue", "scaled green to 0"."""
    compensation_errors: list[str] = []
    """Restoring steps that failed themselves: these need a person."""


class DeploymentStatus(BaseModel):
    """The deployment as it stands: the ``status`` query, and the final result."""

    deployment_id: str
    service: str
    environment: str
    region: str
    version: str
    image: str
    state: State = State.RUNNING
    phase: Phase = Phase.SETTING_UP
    phases: list[PhaseEntry] = []
    switch_active_cluster: bool = True
    shutdown_inactive_cluster: bool = True
    require_approval: bool = False
    switch_together: bool = False
    active_color_before: Color | None = None
    target_color: Color | None = None
    active_color_after: Color | None = None
    versions_before: dict[Color, str | None] = {}
    versions_after: dict[Color, str | None] = {}
    task_definition_arn: str | None = None
    task_definition_before: str | None = None
    """The task definition the new color's service ran when the deployment read it, before
    deploying: a failure or a rollback points the service back at it. None when ECS reported
    none, or the deployment started before this was recorded (then it is only scaled to 0)."""
    health_checks: int = 0
    last_health: HealthObservation | None = None
    connection_checks: int = 0
    last_connections: ConnectionCount | None = None
    drain_until: datetime | None = None
    watch_workflow_id: str | None = None
    """The ``LongWait`` child that took over the latest long wait: ``<ID>-health``, ``-bake``,
    ``-drain`` (workflows/long_wait.py, workflows/waits.py)."""
    integration_results: list[CheckResult] = []
    awaiting_approval_since: datetime | None = None
    awaiting_approval_until: datetime | None = None
    approval: Approval | None = None
    traffic_plan: list[int] = []
    """The new color's percent of the traffic at each step of the switch (the last is 100);
    empty until the switch starts."""
    traffic_step: int = 0
    """Steps set so far: 1 once the first split is set, len(traffic_plan) once all traffic is on
    the new color (and 0 again after a rollback put it back)."""
    traffic_split: RouterWeights | None = None
    """The weights the deployment set last."""
    step_until: datetime | None = None
    """When the current step's pause ends (a step waiting for approval: when that wait ends)."""
    awaiting_step_approval: bool = False
    """The current step waits for the ``approve`` message, not for a timer."""
    step_approvals: list[StepApproval] = []
    analysis: list[MetricTally] = []
    """Each analysis metric's verdicts so far and its latest result."""
    bake_until: datetime | None = None
    alarm_checks: int = 0
    last_alarms: list[AlarmState] = []
    rollback: RollbackRecord | None = None
    warnings: list[str] = []
    report: FailureReport | None = None
    report_number: int = 0
    """In a report to a multi-region parent: which one (1, 2, …). Signals between workflows can
    arrive out of order, so the parent keeps the highest; 0 in a status that is not a report."""

    def traffic_text(self) -> str | None:
        """Where the traffic goes, as the deployment set it, and the step it is at, e.g.
        ``green 10%, blue 90% (step 1 of 3, holding until 12:00:05 UTC)``; None before the
        switch."""
        split, new = self.traffic_split, self.target_color
        if split is None or new is None:
            return None
        old = other_color(new)
        shares = f"{new} {split.percent_of(new)}%, {old} {split.percent_of(old)}%"
        plan = self.traffic_plan
        if not (len(plan) > 1 and self.traffic_step):
            return shares
        step = f"step {self.traffic_step} of {len(plan)}"
        if self.state == State.RUNNING and self.step_until and self.traffic_step < len(plan):
            wait = "waiting for approval" if self.awaiting_step_approval else "holding"
            step += f", {wait} until {self.step_until:%H:%M:%S} UTC"
        return f"{shares} ({step})"

    def analysis_lines(self) -> list[str]:
        """Each analysis metric's tally and latest verdict, a line each."""
        return [
            tally.summary() + (f"; last: {tally.last.reason}" if tally.last else "")
            for tally in self.analysis
        ]
