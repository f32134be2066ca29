"""One deployment across regions: a parent workflow with a one-region child per region."""

from typing import Self

from pydantic import BaseModel, Field, model_validator

from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, DeploymentStatus, Image, Version
from models.deployment_phase import Phase, State
from models.messages import UNKNOWN, Approval, RollbackRecord
from models.strict import StrictModel


class MultiRegionRequest(StrictModel):
    """Deploy one version to one environment in several regions, wave after wave."""

    service: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    version: Version
    image: Image
    waves: list[list[EnvironmentConfig]] = Field(min_length=1)
    """Each region's configuration (its overrides applied), in the order of the waves."""
    switch_active_cluster: bool = True
    shutdown_inactive_cluster: bool = True
    require_approval: bool = False
    """One approval for every region: the parent passes it on to each region that waits."""
    switch_together: bool = False
    """No region of a wave switches before every region of that wave is ready to switch."""
    fail_fast: bool = True
    """A region that fails rolls the others back; False: the others go on."""
    requested_by: str = UNKNOWN
    search_attributes: bool = False
    """As ``DeploymentRequest.search_attributes``, for the parent and every region's child."""

    @model_validator(mode="after")
    def _one_region_once(self) -> Self:
        regions = self.regions()
        if any(not wave for wave in self.waves):
            raise ValueError("waves: a wave needs at least one region")
        repeated = sorted({r for r in regions if regions.count(r) > 1})
        if repeated:
            raise ValueError(f"region {', '.join(repeated)} is listed more than once")
        return self

    def regions(self) -> list[str]:
        """Every region, wave by wave."""
        return [target.region for wave in self.waves for target in wave]

    def for_region(self, target: EnvironmentConfig) -> DeploymentRequest:
        """The one-region request of the child deploying to ``target``."""
        return DeploymentRequest(
            service=self.service,
            environment=self.environment,
            version=self.version,
            image=self.image,
            target=target,
            switch_active_cluster=self.switch_active_cluster,
            shutdown_inactive_cluster=self.shutdown_inactive_cluster,
            require_approval=self.require_approval,
            switch_together=self.switch_together,
            requested_by=self.requested_by,
            search_attributes=self.search_attributes,
        )


class RegionProgress(BaseModel):
    """One region of a multi-region deployment, as the parent knows it."""

    region: str
    wave: int
    """0-based index of the region's wave."""
    workflow_id: str
    """The child workflow's ID: ``<parent ID>-<region>``."""
    started: bool = False
    ended: bool = False
    released: bool = False
    """The parent has passed the approval (or the switch-together release) on to it."""
    status: DeploymentStatus | None = None
    """The child's latest status report; its final status once it has ended."""

    def state(self) -> State | None:
        """How the region stands; None before it started."""
        return self.status.state if self.status else None

    def at_gate(self) -> bool:
        """Waiting for an approval (or the switch-together release) that nothing has given yet."""
        status = self.status
        return (
            status is not None
            and status.state == State.RUNNING
            and status.phase == Phase.AWAITING_APPROVAL
            and status.approval is None
            and status.rollback is None
        )


class MultiRegionStatus(BaseModel):
    """The parent's ``status`` query and result: every region's progress, and the messages."""

    deployment_id: str
    service: str
    environment: str
    version: str
    image: str
    state: State = State.RUNNING
    waves: list[list[str]]
    current_wave: int = 0
    regions: dict[str, RegionProgress]
    require_approval: bool = False
    switch_together: bool = False
    fail_fast: bool = True
    approval: Approval | None = None
    step_approvals: list[Approval] = []
    """Approvals of traffic steps passed on to the regions holding one; the comment names them."""
    rollback: RollbackRecord | None = None
    reason: str | None = None
    """Why it did not succeed: the first region that failed, or the rollback."""
    warnings: list[str] = []
