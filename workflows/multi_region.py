"""One deployment across regions: a parent starting the one-region workflow per region.

The regions of a wave run in parallel; a wave starts once every region of the previous one has
passed its bake. Each child reports its phases to the parent (signal ``region_progress``),
which is how the parent knows when to pass an approval on, when a switch-together wave is
ready, and when a wave has passed its bake.
"""

import asyncio

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from models.deployment import DeploymentStatus, Phase, State
    from models.messages import Approval, ApproveRequest, RollbackRecord, RollbackRequest
    from models.multi_region import MultiRegionRequest, MultiRegionStatus, RegionProgress
    from workflows import lease, search_attributes
    from workflows.deployment import BlueGreenDeployment
    from workflows.multi_region_details import describe_regions, overall_phase
    from workflows.notifications import RegionsNotices
    from workflows.refusals import ignored, reject, self_approval_refusal

# Phases a region has reached once its bake passed (or it ended); the next wave may start.
_PAST_BAKE = (Phase.DRAINING, Phase.CLEANING_UP)

# Patch (docs/workflow-changes.md): with switch-together, a region already through the gate
# (approved on its own child ID, or its timeout proceeded) no longer holds the rest of its wave
# at the gate until it ends.
PAST_THE_GATE = "switch-together-past-the-gate"


@workflow.defn(name="MultiRegionDeployment")
class MultiRegionDeployment:
    """Deploy one version to several regions: one child ``BlueGreenDeployment`` per region.

    Query ``status`` for a :class:`MultiRegionStatus`. Messages (updates with validators, and
    signals of the same name): ``approve`` releases every region waiting for approval, now and
    later; ``rollback`` rolls back every region, each by its own phase rule. The result is the
    final status; a deployment that did not succeed everywhere fails with an ``ApplicationError``
    of type ``DeploymentFailed`` whose first detail is the final status.
    """

    @workflow.init
    def __init__(self, request: MultiRegionRequest) -> None:
        self._request = request
        parent_id = workflow.info().workflow_id
        self._status = MultiRegionStatus(
            deployment_id=parent_id,
            service=request.service,
            environment=request.environment,
            version=request.version,
            image=request.image,
            waves=[[target.region for target in wave] for wave in request.waves],
            regions={
                target.region: RegionProgress(
                    region=target.region, wave=index, workflow_id=f"{parent_id}-{target.region}"
                )
                for index, wave in enumerate(request.waves)
                for target in wave
            },
            require_approval=request.require_approval,
            switch_together=request.switch_together,
            fail_fast=request.fail_fast,
        )
        self._stop_reason: str | None = None
        self._rolling_back: RollbackRequest | None = None
        self._searchable: tuple[Phase, State] | None = None
        """The phase and state last written to the search attributes."""
        self._notices = RegionsNotices(request, self._status, self._update_details)

    @workflow.query
    def status(self) -> MultiRegionStatus:
        """Every region's progress, as the children last reported it."""
        return self._status

    # --- messages ---------------------------------------------------------------------------

    @workflow.signal
    async def region_progress(self, status: DeploymentStatus) -> None:
        """A child's report of where its region stands."""
        progress = self._status.regions.get(status.region)
        if progress is None or progress.workflow_id != status.deployment_id:
            return
        seen = progress.status
        if seen is not None and status.report_number < seen.report_number:
            return  # an earlier report overtaken by a later one: signals keep no order
        progress.status = status
        self._update_details()
        await self._release_ready_regions()

    @workflow.update(name="approve")
    async def approve(self, request: ApproveRequest) -> MultiRegionStatus:
        """Approve every region: those waiting now and those that will wait later; or, while
        regions hold a traffic step that waits for approval, let those go on."""
        await self._take_approval(request)
        return self._status

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        reject(self._approval_refusal(request), "ApprovalRefused")

    @workflow.signal(name="approve")
    async def approve_signal(self, request: ApproveRequest) -> None:
        """The ``approve`` update as a signal: a refusal is recorded as a warning."""
        if ignored(self._status.warnings, "approve", request.by, self._approval_refusal(request)):
            return
        await self._take_approval(request)

    async def _take_approval(self, request: ApproveRequest) -> None:
        steps = self._regions_at_a_step_gate()
        if steps:
            forwarded = request.model_copy(
                update={"comment": f"{request.comment} (via {self._status.deployment_id})".strip()}
            )
            regions = ", ".join(p.region for p in steps)
            self._status.step_approvals.append(
                Approval(by=request.by, comment=f"traffic step of {regions}", at=workflow.now())
            )
            for progress in steps:
                await self._signal(progress, "approve", forwarded)
            self._update_details()
            return
        self._record_approval(request)
        await self._release_ready_regions()

    @workflow.update(name="rollback")
    async def rollback(self, request: RollbackRequest) -> MultiRegionStatus:
        """Roll every region back, in parallel, each by the rule of the phase it is in."""
        await self._roll_back_all(self._record_rollback(request))
        return self._status

    @rollback.validator
    def _validate_rollback(self, request: RollbackRequest) -> None:
        reject(self._rollback_refusal(), "RollbackRefused")

    @workflow.signal(name="rollback")
    async def rollback_signal(self, request: RollbackRequest) -> None:
        """The ``rollback`` update as a signal: a refusal is recorded as a warning."""
        if ignored(self._status.warnings, "rollback", request.by, self._rollback_refusal()):
            return
        await self._roll_back_all(self._record_rollback(request))

    def _approval_refusal(self, request: ApproveRequest) -> str | None:
        status = self._status
        if status.state != State.RUNNING or self._rolling_back:
            return f"the deployment is ending ({self._stop_reason or status.state.value})"
        if self._regions_at_a_step_gate():
            return self_approval_refusal(self._four_eyes(), request.by, self._request.requested_by)
        if not status.require_approval:
            return "this deployment does not require approval"
        if status.approval is not None:
            return f"already approved by {status.approval.by} at {status.approval.at:%Y-%m-%d %H:%M:%S} UTC"
        if not self._waiting_regions():
            phases = ", ".join(
                f"{p.region} {p.status.phase.value}" for p in status.regions.values() if p.status
            )
            return f"not waiting for approval: no region is ready to switch yet ({phases or 'starting'})"
        return self_approval_refusal(self._four_eyes(), request.by, self._request.requested_by)

    def _four_eyes(self) -> bool:
        """One approval for every region: it must satisfy each region that asks for four eyes."""
        return any(
            target.approval.require_different_approver
            for wave in self._request.waves
            for target in wave
        )

    def _record_approval(self, request: ApproveRequest) -> None:
        self._status.approval = Approval(by=request.by, comment=request.comment, at=workflow.now())
        self._update_details()

    def _rollback_refusal(self) -> str | None:
        status = self._status
        if status.rollback is not None:
            return f"a rollback was already requested by {status.rollback.by}"
        if status.state != State.RUNNING:
            return f"the deployment is already ending ({status.state.value})"
        return None

    def _record_rollback(self, request: RollbackRequest) -> RollbackRequest:
        self._status.rollback = RollbackRecord(
            by=request.by, reason=request.reason, at=workflow.now()
        )
        self._stop(f"rollback requested by {request.by}: {request.reason}")
        return request

    # --- the run ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: MultiRegionRequest) -> MultiRegionStatus:
        """Run the waves; see the class docstring for how it ends."""
        held = await lease.take(request.service, request.environment)
        if held.refusal is not None:
            # No region has started: it ends failed, having read and changed nothing.
            self._status.reason = f"refused: {held.refusal}"
            return self._finish()
        return await held.held_during(self._run_waves(request))

    async def _run_waves(self, request: MultiRegionRequest) -> MultiRegionStatus:
        ended: list[asyncio.Task[None]] = []
        for index, wave in enumerate(request.waves):
            if self._stop_reason:
                break
            self._status.current_wave = index
            self._update_details()
            ended += [asyncio.create_task(self._run_region(target.region)) for target in wave]
            await workflow.wait_condition(self._wave_done)
        await asyncio.gather(*ended)
        await workflow.wait_condition(workflow.all_handlers_finished)
        try:
            return self._finish()
        finally:
            # The last message is sent before the lease is released and the workflow ends.
            await self._notices.delivered()

    async def _run_region(self, region: str) -> None:
        """Start the region's child, wait for its end, and react to a failure."""
        progress = self._status.regions[region]
        target = next(t for wave in self._request.waves for t in wave if t.region == region)
        try:
            child = await workflow.start_child_workflow(
                BlueGreenDeployment.run,
                self._request.for_region(target),
                id=progress.workflow_id,
                # Cancelled, a child puts its region back as it was; terminated, it could not.
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                static_summary=(
                    f"deploy {self._request.service} {self._request.version} to"
                    f" {self._request.environment}, {region} (wave {progress.wave + 1})"
                ),
                memo={
                    "service": self._request.service,
                    "environment": self._request.environment,
                    "version": self._request.version,
                    "region": region,
                    "requested_by": self._request.requested_by,
                },
                search_attributes=(
                    search_attributes.at_start(
                        self._request.service,
                        self._request.environment,
                        self._request.version,
                        [region],
                    )
                    if self._request.search_attributes
                    else None
                ),
            )
        except WorkflowAlreadyStartedError:
            progress.ended = True
            self._status.warnings.append(f"{region}: {progress.workflow_id} is already running")
            await self._region_failed(progress)
            return
        progress.started = True
        self._update_details()
        if self._rolling_back is not None:
            # The rollback went out while this child was being started.
            await self._signal(progress, "rollback", self._rolling_back)
        try:
            progress.status = await child
        except ChildWorkflowError as err:
            progress.status = _final_status(err) or progress.status
            if progress.status is not None and progress.status.state == State.RUNNING:
                progress.status.state = State.FAILED
        progress.ended = True
        self._update_details()
        if progress.state() != State.SUCCEEDED:
            await self._region_failed(progress)
        await self._release_ready_regions()

    async def _region_failed(self, progress: RegionProgress) -> None:
        reason = (
            progress.status.report.reason if progress.status and progress.status.report else "ended"
        )
        if self._status.reason is None and self._status.rollback is None:
            self._status.reason = f"{progress.region}: {reason}"
        if self._rolling_back is not None:
            return
        # Later waves never start after a failure; the regions running now go on or roll back.
        self._stop(f"{progress.region} did not succeed")
        if self._request.fail_fast:
            await self._roll_back_all(
                RollbackRequest(
                    reason=f"{progress.region} failed (fail fast): {reason}"[:2000],
                    by=self._status.deployment_id,
                )
            )

    # --- passing messages on ------------------------------------------------------------------

    async def _release_ready_regions(self) -> None:
        """Pass the approval (or the switch-together release) on to every region ready for it."""
        for progress in self._regions_to_release():
            progress.released = True
            approval = self._status.approval
            request = (
                ApproveRequest(
                    by=approval.by,
                    comment=f"{approval.comment} (via {self._status.deployment_id})".strip(),
                )
                if approval
                else ApproveRequest(
                    by=self._status.deployment_id, comment="every region of the wave is ready"
                )
            )
            await self._signal(progress, "approve", request)

    def _regions_to_release(self) -> list[RegionProgress]:
        # A failure without fail fast stops later waves only: the running regions go on.
        if self._rolling_back or (self._request.require_approval and self._status.approval is None):
            return []
        waiting = [p for p in self._waiting_regions() if not p.released]
        if not self._request.switch_together:
            return waiting
        ready = []
        for progress in waiting:
            # Every region of the wave that is still running must be at the gate, or through it.
            wave = [p for p in self._status.regions.values() if p.wave == progress.wave]
            holding = [p for p in wave if not (p.at_gate() or _ended(p))]
            if holding and all(map(_through_the_gate, holding)) and workflow.patched(PAST_THE_GATE):
                holding = []
            if not holding:
                ready.append(progress)
        return ready

    async def _roll_back_all(self, request: RollbackRequest) -> None:
        self._rolling_back = request
        for progress in self._running_regions():
            await self._signal(progress, "rollback", request)

    async def _signal(self, progress: RegionProgress, name: str, arg: object) -> None:
        try:
            await workflow.get_external_workflow_handle(progress.workflow_id).signal(name, arg)
        except Exception as err:  # the child may have just ended
            self._status.warnings.append(f"{progress.region}: {name} not delivered: {err}")

    # --- state ----------------------------------------------------------------------------------

    def _stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            self._update_details()

    def _wave_done(self) -> bool:
        """Every region of the current wave passed its bake, or the deployment is stopping."""
        wave = self._status.current_wave
        regions = [p for p in self._status.regions.values() if p.wave == wave]
        return self._stop_reason is not None or all(_past_bake(p) for p in regions)

    def _regions_at_a_step_gate(self) -> list[RegionProgress]:
        """Regions holding a traffic step until someone approves it."""
        return [
            p
            for p in self._running_regions()
            if p.status is not None
            and p.status.state == State.RUNNING
            and p.status.awaiting_step_approval
            and p.status.rollback is None
        ]

    def _waiting_regions(self) -> list[RegionProgress]:
        return [p for p in self._status.regions.values() if p.at_gate()]

    def _running_regions(self) -> list[RegionProgress]:
        return [p for p in self._status.regions.values() if p.started and not _ended(p)]

    def _finish(self) -> MultiRegionStatus:
        status = self._status
        states = [p.state() if p.started else None for p in status.regions.values()]
        if all(state == State.SUCCEEDED for state in states) and status.rollback is None:
            status.state = State.SUCCEEDED
            self._update_details()
            return status
        status.state = State.ROLLED_BACK if status.rollback is not None else State.FAILED
        if status.rollback is not None and status.reason is None:
            status.reason = f"rollback requested by {status.rollback.by}: {status.rollback.reason}"
        kept = [p.region for p in status.regions.values() if p.state() == State.SUCCEEDED]
        if kept:
            status.warnings.append(f"these regions run the new version: {', '.join(kept)}")
        self._update_details()
        raise ApplicationError(
            f"{status.state.value}: {status.reason}",
            status,
            type="DeploymentFailed",
            non_retryable=True,
        )

    def _update_details(self) -> None:
        workflow.set_current_details(describe_regions(self._status, workflow.now()))
        self._notices.changed(rolling_back=self._rolling_back is not None)
        if self._request.search_attributes:
            # Only on a change: every region's report comes through here.
            searchable = (overall_phase(self._status), self._status.state)
            if searchable != self._searchable:
                self._searchable = searchable
                workflow.upsert_search_attributes(search_attributes.progress(*searchable))


def _ended(progress: RegionProgress) -> bool:
    status = progress.status
    return progress.ended or (status is not None and status.phase == Phase.DONE)


def _through_the_gate(progress: RegionProgress) -> bool:
    """The region went through the gate on its own: approved on its child ID, or its timeout
    proceeded (an approval recorded that the parent did not pass on)."""
    status = progress.status
    return not progress.released and status is not None and status.approval is not None


def _past_bake(progress: RegionProgress) -> bool:
    status = progress.status
    if status is None:
        return False
    if status.state == State.SUCCEEDED:
        return True
    return status.state == State.RUNNING and status.phase in _PAST_BAKE


def _final_status(err: ChildWorkflowError) -> DeploymentStatus | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "DeploymentFailed" and cause.details:
        return DeploymentStatus.model_validate(cause.details[0])
    return None
