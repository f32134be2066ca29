"""One blue/green deployment of one service, one environment, one region.

The workflow only decides; every AWS or HTTP call is an activity. Production is sacred: before
the switch nothing touches the active color, and once traffic has moved, a failure or a rollback
moves it back to the old color before anything else is undone.
"""

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import connections, ecs, integration_checks
    from models.activities import (
        ConnectionsInput,
        IntegrationChecksInput,
        RegisterTaskDefinitionInput,
        ScaleToZeroInput,
        UpdateServiceInput,
    )
    from models.colors import Color, other_color
    from models.config import expand_url
    from models.deployment import (
        DeploymentRequest,
        DeploymentStatus,
        FailureReport,
        Phase,
        PhaseEntry,
        State,
    )
    from models.durations import format_duration
    from models.long_wait import HealthWaitInput
    from models.messages import Approval, ApproveRequest, RollbackRecord, RollbackRequest
    from models.observations import RouterWeights, task_definition_name
    from workflows import lease, search_attributes
    from workflows.analysis import Analysis
    from workflows.approvals import wait_for_approval
    from workflows.aws_steps import AwsSteps
    from workflows.calls import Calls, Interrupted, StepFailed
    from workflows.details import describe
    from workflows.long_wait import LongWaits
    from workflows.notifications import DeploymentNotices
    from workflows.options import CALL_RETRY, RESTORE_RETRY
    from workflows.refusals import ignored, reject, self_approval_refusal
    from workflows.traffic_steps import TrafficSteps
    from workflows.waits import BAKE, DRAIN, HEALTH, firing, read_alarms

# Once a deployment is here, nothing more can be asked of it.
_ENDING = (Phase.COMPENSATING, Phase.DONE)

# Patch (docs/workflow-changes.md): the setup also reads the new color's task definition, which
# a failure then puts back. Runs started before it have no such read in their histories.
RESTORE_TASK_DEFINITION = "restore-task-definition"


@workflow.defn(name="BlueGreenDeployment")
class BlueGreenDeployment:
    """Deploy a version to the inactive color, prove it, switch traffic, bake, drain, shut down.

    Query ``status`` for a :class:`DeploymentStatus` at any time. Messages, each both an update
    (answers, and refuses with a reason) and a signal of the same name (for fire-and-forget
    tools): ``approve`` (:class:`ApproveRequest`) and ``rollback`` (:class:`RollbackRequest`).

    The result is the final status; a deployment that did not succeed fails the workflow with an
    ``ApplicationError`` of type ``DeploymentFailed`` whose first detail is the final status.
    """

    @workflow.init
    def __init__(self, request: DeploymentRequest) -> None:
        self._request = request
        self._env = request.target
        self._calls = Calls(interrupted=self._stop_pending)
        self._aws = AwsSteps(request.target, self._calls)
        self._status = DeploymentStatus(
            deployment_id=workflow.info().workflow_id,
            service=request.service,
            environment=request.environment,
            region=request.target.region,
            version=request.version,
            image=request.image,
            switch_active_cluster=request.switch_active_cluster,
            shutdown_inactive_cluster=request.shutdown_inactive_cluster,
            require_approval=request.require_approval,
            switch_together=request.switch_together,
        )
        # What has been changed so far decides what a failure must undo.
        self._touched_new_color = False
        self._switch_started = False
        self._cleanup_started = False
        self._restoring = False
        self._reports: list[asyncio.Task[None]] = []
        self._notices = DeploymentNotices(request, self._status, self._update_details)
        self._waits = LongWaits(
            self._calls, self._status, self._update_details, self._report_to_parent
        )
        self._analysis = Analysis(self._calls, self._status, self._on_change)
        self._steps = TrafficSteps(
            request.target, self._aws, self._status, self._analysis, self._on_change
        )

    @workflow.query
    def status(self) -> DeploymentStatus:
        """The deployment as it stands now."""
        return self._status

    # --- messages ---------------------------------------------------------------------------

    @workflow.update(name="approve")
    def approve(self, request: ApproveRequest) -> DeploymentStatus:
        """Let a deployment waiting for approval switch traffic; refused when none is waiting."""
        self._record_approval(request)
        return self._status

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        reject(self._approval_refusal(request), "ApprovalRefused")

    @workflow.signal(name="approve")
    def approve_signal(self, request: ApproveRequest) -> None:
        """The ``approve`` update as a signal: a refusal is recorded as a warning."""
        if ignored(self._status.warnings, "approve", request.by, self._approval_refusal(request)):
            self._update_details()
            return
        self._record_approval(request)

    @workflow.update(name="rollback")
    def rollback(self, request: RollbackRequest) -> DeploymentStatus:
        """Stop and put production back, by the phase's rule; refused once the old color is gone."""
        self._record_rollback(request)
        return self._status

    @rollback.validator
    def _validate_rollback(self, request: RollbackRequest) -> None:
        reject(self._rollback_refusal(), "RollbackRefused")

    @workflow.signal(name="rollback")
    def rollback_signal(self, request: RollbackRequest) -> None:
        """The ``rollback`` update as a signal: a refusal is recorded as a warning."""
        if ignored(self._status.warnings, "rollback", request.by, self._rollback_refusal()):
            self._update_details()
            return
        self._record_rollback(request)

    def _approval_refusal(self, request: ApproveRequest) -> str | None:
        if self._status.awaiting_step_approval and not self._stop_pending():
            return self_approval_refusal(
                self._env.approval.require_different_approver,
                request.by,
                self._request.requested_by,
            )
        approval = self._status.approval
        if approval is not None:
            return f"already approved by {approval.by} at {approval.at:%Y-%m-%d %H:%M:%S} UTC"
        if self._status.phase != Phase.AWAITING_APPROVAL or self._stop_pending():
            return (
                f"not waiting for approval (phase {self._status.phase.value},"
                f" state {self._status.state.value})"
            )
        # Only a person's approval has four eyes to count: the parent's release of a
        # switch-together gate (no --require-approval) is not one.
        return self_approval_refusal(
            self._request.require_approval and self._env.approval.require_different_approver,
            request.by,
            self._request.requested_by,
        )

    def _record_approval(self, request: ApproveRequest) -> None:
        if self._status.awaiting_step_approval:
            self._steps.record_approval(request)
            workflow.logger.info(
                "deployment %s: step %d approved by %s",
                self._status.deployment_id,
                self._status.traffic_step,
                request.by,
            )
            return
        self._status.approval = Approval(by=request.by, comment=request.comment, at=workflow.now())
        workflow.logger.info("deployment %s approved by %s", self._status.deployment_id, request.by)
        self._update_details()
        self._report_to_parent()

    def _rollback_refusal(self) -> str | None:
        status = self._status
        if status.rollback is not None:
            return (
                f"a rollback was already requested by {status.rollback.by} at"
                f" {status.rollback.at:%Y-%m-%d %H:%M:%S} UTC"
            )
        if self._cleanup_started:
            before = status.versions_before.get(self._old)
            previous = f"version {before}" if before else "the previous version"
            return (
                f"{self._old} is already being shut down, so traffic cannot go back to it;"
                f" deploy {previous} again instead"
            )
        if status.state != State.RUNNING or status.phase in _ENDING:
            return f"the deployment is already ending ({status.state.value}, {status.phase.value})"
        return None

    def _record_rollback(self, request: RollbackRequest) -> None:
        self._status.rollback = RollbackRecord(
            by=request.by, reason=request.reason, at=workflow.now(), phase=self._status.phase
        )
        workflow.logger.info(
            "deployment %s: rollback requested by %s", self._status.deployment_id, request.by
        )
        self._update_details()
        self._report_to_parent()

    def _rollback_pending(self) -> bool:
        return self._status.rollback is not None and not self._restoring

    def _stop_pending(self) -> bool:
        """A rollback was asked for, or the analysis found the new color bad: stop at the next
        safe point (not once restoring has begun)."""
        return (self._rollback_pending() or self._analysis.failure is not None) and not (
            self._restoring
        )

    # --- the sequence -------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: DeploymentRequest) -> DeploymentStatus:
        """Run the whole sequence; see the class docstring for how it ends."""
        held = await lease.take(request.service, request.environment)
        if held.refusal is not None:
            raise self._refused(f"refused: {held.refusal}")
        try:
            return await self._run_to_the_end()
        finally:
            # A multi-region parent must hear how this region ended before the child closes.
            await asyncio.gather(*self._reports)
            await self._notices.delivered()  # its last message, before the lease is released
            await held.release()

    def _refused(self, reason: str) -> ApplicationError:
        """Another operation holds the lease: end failed, having read and changed nothing."""
        self._status.state = State.FAILED
        self._status.report = FailureReport(
            phase=self._status.phase, reason=reason, error_type="LeaseHeld"
        )
        self._enter(Phase.DONE)
        return ApplicationError(reason, self._status, type="DeploymentFailed", non_retryable=True)

    async def _run_to_the_end(self) -> DeploymentStatus:
        self._enter(Phase.SETTING_UP)
        try:
            await self._run_sequence()
            self._calls.raise_if_interrupted()
        except (StepFailed, Interrupted) as stop:
            failure = stop if isinstance(stop, StepFailed) else self._rollback_failure()
            report = await self._end_restored(failure)
            verb = "rolled back" if self._status.state == State.ROLLED_BACK else "failed"
            raise ApplicationError(
                f"{verb} in {report.phase.value}: {failure.reason}",
                self._status,
                type="DeploymentFailed",
                non_retryable=True,
            ) from None
        except asyncio.CancelledError:
            # A cancel is a request to stop: put production back as it was, then end cancelled.
            await self._end_restored(StepFailed("the deployment was cancelled", "Cancelled"))
            raise
        self._status.state = State.SUCCEEDED
        self._enter(Phase.DONE)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _run_sequence(self) -> None:
        await self._set_up()
        await self._deploy_new_version()
        await self._wait_until_healthy()
        await self._run_integration_checks()
        if not self._request.switch_active_cluster:
            return
        await self._wait_for_approval()
        await self._switch_traffic()
        await self._bake()
        await self._analysis.until_passing()
        await self._analysis.stop()
        if not self._request.shutdown_inactive_cluster:
            return
        await self._drain_old_connections()
        await self._clean_up_old_color()

    # --- the steps -------------------------------------------------------------------------

    async def _set_up(self) -> None:
        state = await self._aws.read_active_state()
        self._old: Color = state.active_color
        self._new: Color = other_color(state.active_color)
        self._status.active_color_before = self._old
        self._status.active_color_after = self._old
        self._status.target_color = self._new
        self._status.versions_before = dict(state.versions)
        self._status.versions_after = dict(state.versions)
        if state.versions.get(self._old) == self._request.version:
            self._status.warnings.append(
                f"version {self._request.version} is already active on {self._old}"
            )
        if self._env.bake.alarms and self._request.switch_active_cluster:
            # Refuse before touching anything: a bake that starts in ALARM would only roll back.
            already = firing(await read_alarms(self._calls, self._aws.alarms_input()))
            if already:
                raise StepFailed(
                    "alarm already in ALARM before deploying: "
                    + "; ".join(f"{a.name}: {a.reason}" for a in already),
                    "AlarmFiring",
                )
        if workflow.patched(RESTORE_TASK_DEFINITION):
            # Read before anything changes it: what a failure points the new color back at, so
            # that ECS runs what SSM's version of that color says.
            self._status.task_definition_before = await self._aws.read_task_definition(self._new)

    async def _deploy_new_version(self) -> None:
        self._enter(Phase.DEPLOYING)
        env, new = self._env, self._new
        arn = await self._calls.activity(
            ecs.register_task_definition,
            RegisterTaskDefinitionInput(
                region=env.region,
                task_family=env.task_family,
                container_name=env.container_name,
                image=self._request.image,
            ),
            summary=f"register task definition {env.task_family} with image {self._request.image}",
        )
        self._status.task_definition_arn = arn
        self._touched_new_color = True
        await self._calls.activity(
            ecs.update_service,
            UpdateServiceInput(
                target=self._aws.service(new),
                task_definition_arn=arn,
                desired_count=env.desired_count,
            ),
            summary=f"run version {self._request.version} on {new}: {env.desired_count} tasks",
        )
        await self._set_version(new, self._request.version, CALL_RETRY)

    async def _wait_until_healthy(self) -> None:
        new, health = self._new, self._env.health
        self._enter(Phase.WAITING_FOR_HEALTH)
        check = HealthWaitInput(
            service=self._aws.health_input(new),
            task_definition_arn=self._status.task_definition_arn,
        )
        progress = await self._waits.run(
            HEALTH, new, check, poll_interval=health.poll_interval, timeout=health.timeout
        )
        if not progress.met:
            last = progress.last
            raise StepFailed(
                f"{new} was not healthy after {format_duration(health.timeout)}"
                f" ({progress.checks} checks; last: {last.reason if last else 'none'})",
                "HealthTimeout",
            )

    async def _run_integration_checks(self) -> None:
        checks = self._env.integration_checks
        if not checks:
            return
        self._enter(Phase.TESTING)
        results = await self._calls.activity(
            integration_checks.run_integration_checks,
            IntegrationChecksInput(checks=checks, color_url=self._env.color(self._new).url),
            summary=f"{len(checks)} integration checks against {self._new}",
            read_only=True,
        )
        self._status.integration_results = results
        failed = [r for r in results if not r.passed]
        if failed:
            raise StepFailed(
                f"{len(failed)} of {len(results)} integration checks failed: "
                + "; ".join(f"{r.name}: {r.detail}" for r in failed),
                "IntegrationChecksFailed",
            )

    async def _wait_for_approval(self) -> None:
        # One gate for both: a person's approval, and (multi-region) the parent's release once
        # every region of the wave is ready to switch.
        if not (self._request.require_approval or self._request.switch_together):
            return
        self._enter(Phase.AWAITING_APPROVAL)
        policy = self._env.approval
        self._status.awaiting_approval_since = workflow.now()
        self._status.awaiting_approval_until = workflow.now() + policy.timeout
        self._update_details()
        person = self._request.require_approval
        proceeding = await wait_for_approval(
            self._calls,
            policy,
            lambda: self._status.approval is not None,
            "approval" if person else "the wave",
            "nobody approved" if person else "the other regions were not all ready",
        )
        if proceeding is not None:
            self._status.approval = Approval(by="timeout", comment=proceeding, at=workflow.now())
            self._status.warnings.append(proceeding)
        self._calls.raise_if_interrupted()

    async def _switch_traffic(self) -> None:
        self._enter(Phase.SWITCHING)
        new = self._new
        self._switch_started = True
        await self._steps.before_all_traffic(new)
        await self._aws.set_active(new)
        await self._route_all_to(new, CALL_RETRY)
        self._status.traffic_step = len(self._status.traffic_plan)
        self._analysis.watch_metrics(self._env, new)
        self._analysis.mark()
        conns = self._env.connections
        if conns and conns.notify_url:
            # Best effort: players still leave when their game ends; the drain timeout bounds it.
            try:
                await self._calls.activity(
                    connections.notify_reconnect,
                    self._connections_input(conns.notify_url),
                    summary=f"tell {self._old}'s clients to reconnect after their game",
                )
            except StepFailed as failure:
                self._status.warnings.append(f"reconnect notification failed: {failure.reason}")

    async def _bake(self) -> None:
        bake = self._env.bake
        if not bake.duration:
            return
        self._status.bake_until = workflow.now() + bake.duration
        self._enter(Phase.BAKING)
        if not bake.alarms:
            await self._calls.pause(
                bake.duration, f"bake {format_duration(bake.duration)}, both colors running"
            )
            return
        progress = await self._waits.run(
            BAKE,
            self._new,
            self._aws.alarms_input(),
            poll_interval=bake.poll_interval,
            timeout=bake.duration,
        )
        if progress.met:
            raise StepFailed(
                "; ".join(
                    f"alarm {a.name} is in ALARM: {a.reason}" for a in firing(progress.last or [])
                ),
                "AlarmFired",
            )

    async def _drain_old_connections(self) -> None:
        conns = self._env.connections
        if conns is None:
            return
        old, drain = self._old, self._env.drain
        self._status.drain_until = workflow.now() + drain.timeout
        self._enter(Phase.DRAINING)
        count = self._connections_input(conns.url)
        if conns.notify_url:
            count.remind_url = self._connections_input(conns.notify_url).url
        progress = await self._waits.run(
            DRAIN,
            old,
            count,
            poll_interval=drain.poll_interval,
            timeout=drain.timeout,
        )
        if not progress.met:
            last = progress.last
            left = "an unknown number of" if last is None or last.count is None else last.count
            self._status.warnings.append(
                f"drain timed out after {format_duration(drain.timeout)} with {left} clients "
                f"still on {old}; shut down as configured"
            )

    async def _clean_up_old_color(self) -> None:
        # The last safe point: from here on the old color cannot take the traffic back.
        self._calls.raise_if_interrupted()
        self._enter(Phase.CLEANING_UP)
        self._cleanup_started = True
        await self._calls.activity(
            ecs.scale_to_zero,
            ScaleToZeroInput(target=self._aws.service(self._old)),
            summary=f"scale {self._old} to 0",
        )

    # --- failure and rollback: put production back ----------------------------------------------

    def _rollback_failure(self) -> StepFailed:
        record = self._status.rollback
        if record is None:
            assert self._analysis.failure is not None
            return self._analysis.failure
        return StepFailed(
            f"rollback requested by {record.by}: {record.reason}", "RollbackRequested"
        )

    async def _end_restored(self, failure: StepFailed) -> FailureReport:
        """Record the failure, undo what was done (``_restore_steps``, by phase), and end.

        Before the switch that ends FAILED (ROLLED_BACK when someone asked for it); once the
        switch has started, putting the old color back in service is a rollback.
        """
        self._restoring = True
        await self._analysis.stop()
        report = FailureReport(
            phase=self._status.phase, reason=failure.reason, error_type=failure.error_type
        )
        self._status.report = report
        asked = failure.error_type in ("RollbackRequested", "Cancelled")
        rolled_back = asked or (self._switch_started and not self._cleanup_started)
        self._status.state = State.ROLLED_BACK if rolled_back else State.FAILED
        self._enter(Phase.COMPENSATING)
        for description, restore in self._restore_steps():
            try:
                await restore()
            except StepFailed as err:
                # Later steps depend on this one (never scale down what may serve traffic).
                report.compensation_errors.append(f"{description}: {err.reason}")
                break
            report.compensation.append(description)
        if report.compensation_errors:
            self._status.state = State.FAILED
        await self._waits.stop()
        self._enter(Phase.DONE)
        return report

    def _restore_steps(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        if self._cleanup_started:
            # The old color is being shut down: it cannot take the traffic back.
            return []
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self._switch_started:
            old = self._old
            steps += [
                (f"traffic back to {old}", lambda: self._route_all_to(old, RESTORE_RETRY)),
                (
                    f"SSM active color back to {old}",
                    lambda: self._aws.set_active(old, RESTORE_RETRY),
                ),
            ]
        if self._touched_new_color:
            new = self._new
            previous = self._status.versions_before.get(new)
            steps += [
                (f"scaled {new} to 0{self._back_on()}", self._restore_new_color),
                (
                    f"SSM version of {new} back to {previous or '(none)'}",
                    lambda: self._set_version(new, previous, RESTORE_RETRY),
                ),
            ]
        return steps

    async def _restore_new_color(self) -> None:
        """Scale the new color to zero, on the task definition it ran before (when known)."""
        await self._calls.activity(
            ecs.scale_to_zero,
            ScaleToZeroInput(
                target=self._aws.service(self._new),
                task_definition_arn=self._status.task_definition_before,
            ),
            summary=f"restore: scale {self._new} to 0{self._back_on()}",
            retry=RESTORE_RETRY,
        )

    def _back_on(self) -> str:
        """The restore's wording: ", back on game:1" when the task definition before is known."""
        before = self._status.task_definition_before
        return f", back on {task_definition_name(before)}" if before else ""

    # --- shared calls ---------------------------------------------------------------------------

    async def _route_all_to(self, color: Color, retry: RetryPolicy) -> None:
        await self._aws.route_all_to(color, retry)
        self._status.active_color_after = color
        self._status.traffic_split = RouterWeights.split(color, 100)
        if color == self._old:
            self._status.traffic_step = 0

    async def _set_version(self, color: Color, version: str | None, retry: RetryPolicy) -> None:
        await self._aws.set_version(color, version, retry)
        self._status.versions_after[color] = version

    def _connections_input(self, url_template: str) -> ConnectionsInput:
        """A request about the old color's clients, carrying the old version in the header."""
        assert self._env.connections is not None
        return ConnectionsInput(
            url=expand_url(url_template, self._env.color(self._old).url),
            version_header=self._env.connections.version_header,
            version=self._status.versions_before.get(self._old) or "",
        )

    def _enter(self, phase: Phase) -> None:
        self._status.phase = phase
        self._status.phases.append(PhaseEntry(phase=phase, entered_at=workflow.now()))
        workflow.logger.info("deployment %s: %s", self._status.deployment_id, phase.value)
        if self._request.search_attributes:
            # Every change of state comes with a phase: a failure enters compensating, the end
            # enters done, so the list queries see both here.
            workflow.upsert_search_attributes(search_attributes.progress(phase, self._status.state))
        self._update_details()
        self._report_to_parent()

    def _on_change(self) -> None:
        """Something the status shows changed outside a phase change: show it, report it."""
        self._update_details()
        self._report_to_parent()

    def _update_details(self) -> None:
        workflow.set_current_details(describe(self._status, workflow.now()))
        self._notices.changed()

    def _report_to_parent(self) -> None:
        """Tell a multi-region parent where this region stands (each phase, each message)."""
        parent = workflow.info().parent
        if parent is not None:
            snapshot = self._status.model_copy(
                deep=True, update={"report_number": len(self._reports) + 1}
            )
            self._reports.append(
                asyncio.create_task(self._send_report(parent.workflow_id, snapshot))
            )

    async def _send_report(self, parent_id: str, status: DeploymentStatus) -> None:
        try:
            await workflow.get_external_workflow_handle(parent_id).signal("region_progress", status)
        except Exception as err:  # the parent may be gone; the region goes on regardless
            workflow.logger.warning("could not report to %s: %s", parent_id, err)
