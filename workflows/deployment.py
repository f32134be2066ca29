"""One blue/green deployment of one service, one environment, one region (DESIGN.md §4).

The workflow only decides; every AWS or HTTP call is an activity. Production is sacred: before
the switch nothing touches the active color, and once traffic has moved, a failure moves it back
to the old color before anything else is undone.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities import connections, ecs, integration_checks, ssm, traffic
    from models.activities import (
        CheckHealthInput,
        ConnectionsInput,
        IntegrationChecksInput,
        RegisterTaskDefinitionInput,
        RouterInput,
        ScaleToZeroInput,
        ServiceRef,
        SetActiveColorInput,
        SetColorVersionInput,
        SsmInput,
        SwitchTrafficInput,
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
    from models.observations import ConnectionCount
    from workflows.details import describe
    from workflows.options import CALL_RETRY, CALL_TIMEOUT, RESTORE_RETRY
    from workflows.waiting import poll_until

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


class StepFailed(Exception):
    """A step of the sequence could not be done; ``reason`` is written for people."""

    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


@workflow.defn(name="BlueGreenDeployment")
class BlueGreenDeployment:
    """Deploy a version to the inactive color, prove it, switch traffic, drain, shut the old down.

    Query ``status`` for a :class:`DeploymentStatus` at any time. The result is the final status;
    a failed deployment fails the workflow with an ``ApplicationError`` of type
    ``DeploymentFailed`` whose first detail is the final status, report included.
    """

    @workflow.init
    def __init__(self, request: DeploymentRequest) -> None:
        self._request = request
        self._env = request.target
        self._status = DeploymentStatus(
            deployment_id=workflow.info().workflow_id,
            service=request.service,
            environment=request.environment,
            region=request.target.region,
            version=request.version,
            image=request.image,
            switch_active_cluster=request.switch_active_cluster,
            shutdown_inactive_cluster=request.shutdown_inactive_cluster,
        )
        # What has been changed so far decides what a failure must undo.
        self._touched_new_color = False
        self._switch_started = False
        self._cleanup_started = False

    @workflow.query
    def status(self) -> DeploymentStatus:
        """The deployment as it stands now."""
        return self._status

    @workflow.run
    async def run(self, request: DeploymentRequest) -> DeploymentStatus:
        """Run the whole sequence; see the class docstring for how it ends."""
        self._enter(Phase.SETTING_UP)
        try:
            await self._run_sequence()
        except StepFailed as failure:
            report = await self._end_restored(failure, State.FAILED)
            raise ApplicationError(
                f"failed in {report.phase.value}: {failure.reason}",
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
        # Step 5, approval, will wait here for an approve message.
        await self._switch_traffic()
        # Step 7, the bake with alarm watching, will run here, both colors up.
        if not self._request.shutdown_inactive_cluster:
            return
        await self._drain_old_connections()
        await self._clean_up_old_color()

    # --- the steps -------------------------------------------------------------------------

    async def _set_up(self) -> None:
        state = await self._call(
            ssm.read_color_state,
            SsmInput(region=self._env.region, ssm_prefix=self._env.ssm_prefix),
            summary="read the active color and versions from SSM",
        )
        weights = await self._call(
            traffic.read_router_weights,
            self._router_input(),
            summary=f"read the {self._env.router.kind} router's weights",
        )
        if weights.serving() != state.active_color:
            raise StepFailed(
                f"SSM says {state.active_color} is active but the router weights are "
                f"blue={weights.blue} green={weights.green}; make them agree before deploying",
                "RouterMismatch",
            )
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

    async def _deploy_new_version(self) -> None:
        self._enter(Phase.DEPLOYING)
        env, new = self._env, self._new
        arn = await self._call(
            ecs.register_task_definition,
            RegisterTaskDefinitionInput(
                region=env.region,
                task_family=env.task_family,
                container_name=env.container_name,
                image=self._request.image,
            ),
            summary=f"task definition {env.task_family} with {self._request.image}",
        )
        self._status.task_definition_arn = arn
        self._touched_new_color = True
        await self._call(
            ecs.update_service,
            UpdateServiceInput(
                target=self._service(new), task_definition_arn=arn, desired_count=env.desired_count
            ),
            summary=f"run {self._request.version} on {new} with {env.desired_count} tasks",
        )
        await self._set_version(new, self._request.version, CALL_RETRY)

    async def _wait_until_healthy(self) -> None:
        self._enter(Phase.WAITING_FOR_HEALTH)
        new, health = self._new, self._env.health

        async def is_healthy() -> bool:
            seen = await self._call(
                ecs.check_health,
                CheckHealthInput(
                    target=self._service(new),
                    target_group_arn=self._env.color(new).target_group_arn,
                ),
                summary=f"is {new} healthy?",
            )
            if seen.healthy and seen.task_definition_arn != self._status.task_definition_arn:
                # A healthy service still on the old revision is not the new version.
                seen = seen.model_copy(
                    update={"healthy": False, "reason": f"still on {seen.task_definition_arn}"}
                )
            self._status.health_checks += 1
            self._status.last_health = seen
            self._update_details()
            return seen.healthy

        if not await poll_until(
            is_healthy, poll_interval=health.poll_interval, timeout=health.timeout, what="health"
        ):
            last = self._status.last_health
            raise StepFailed(
                f"{new} was not healthy after {format_duration(health.timeout)}"
                f" ({self._status.health_checks} checks; last: {last.reason if last else 'none'})",
                "HealthTimeout",
            )

    async def _run_integration_checks(self) -> None:
        checks = self._env.integration_checks
        if not checks:
            return
        self._enter(Phase.TESTING)
        results = await self._call(
            integration_checks.run_integration_checks,
            IntegrationChecksInput(checks=checks, color_url=self._env.color(self._new).url),
            summary=f"{len(checks)} integration checks against {self._new}",
        )
        self._status.integration_results = results
        failed = [r for r in results if not r.passed]
        if failed:
            raise StepFailed(
                f"{len(failed)} of {len(results)} integration checks failed: "
                + "; ".join(f"{r.name}: {r.detail}" for r in failed),
                "IntegrationChecksFailed",
            )

    async def _switch_traffic(self) -> None:
        self._enter(Phase.SWITCHING)
        new = self._new
        self._switch_started = True
        await self._set_active(new, CALL_RETRY)
        await self._route_all_to(new, CALL_RETRY)
        conns = self._env.connections
        if conns and conns.notify_url:
            # Best effort: players still leave when their game ends; the drain timeout bounds it.
            try:
                await self._call(
                    connections.notify_reconnect,
                    self._connections_input(conns.notify_url),
                    summary=f"tell {self._old}'s clients to reconnect after their game",
                )
            except StepFailed as failure:
                self._status.warnings.append(f"reconnect notification failed: {failure.reason}")

    async def _drain_old_connections(self) -> None:
        conns = self._env.connections
        if conns is None:
            return
        self._enter(Phase.DRAINING)
        old, drain = self._old, self._env.drain
        request = self._connections_input(conns.url)

        async def is_drained() -> bool:
            try:
                seen = await self._call(
                    connections.count_connections, request, summary=f"clients left on {old}"
                )
            except StepFailed as failure:
                # Counting is advisory: keep polling until the drain timeout.
                seen = ConnectionCount(
                    version=request.version,
                    count=None,
                    error=failure.reason,
                    checked_at=workflow.now(),
                )
            self._status.connection_checks += 1
            self._status.last_connections = seen
            self._update_details()
            return seen.count == 0

        if not await poll_until(
            is_drained, poll_interval=drain.poll_interval, timeout=drain.timeout, what="connections"
        ):
            last = self._status.last_connections
            left = "an unknown number of" if last is None or last.count is None else last.count
            self._status.warnings.append(
                f"drain timed out after {format_duration(drain.timeout)} with {left} clients "
                f"still on {old}; shut down as configured"
            )

    async def _clean_up_old_color(self) -> None:
        self._enter(Phase.CLEANING_UP)
        self._cleanup_started = True
        await self._call(
            ecs.scale_to_zero,
            ScaleToZeroInput(target=self._service(self._old)),
            summary=f"scale {self._old} to 0",
        )

    # --- failure: put production back ---------------------------------------------------------

    async def _end_restored(
        self, failure: StepFailed, state: State = State.ROLLED_BACK
    ) -> FailureReport:
        """Record the failure, undo what was done (DESIGN.md §4 table), and end in ``state``."""
        report = FailureReport(
            phase=self._status.phase, reason=failure.reason, error_type=failure.error_type
        )
        self._status.report = report
        self._status.state = state
        self._enter(Phase.COMPENSATING)
        for description, restore in self._restore_steps():
            try:
                await restore()
            except StepFailed as err:
                # Later steps depend on this one (never scale down what may serve traffic).
                report.compensation_errors.append(f"{description}: {err.reason}")
                break
            report.compensation.append(description)
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
                (f"SSM active color back to {old}", lambda: self._set_active(old, RESTORE_RETRY)),
            ]
        if self._touched_new_color:
            new = self._new
            previous = self._status.versions_before.get(new)
            steps += [
                (f"scaled {new} to 0", self._scale_new_to_zero),
                (
                    f"SSM version of {new} back to {previous or '(none)'}",
                    lambda: self._set_version(new, previous, RESTORE_RETRY),
                ),
            ]
        return steps

    async def _scale_new_to_zero(self) -> None:
        await self._call(
            ecs.scale_to_zero,
            ScaleToZeroInput(target=self._service(self._new)),
            summary=f"restore: scale {self._new} to 0",
            retry=RESTORE_RETRY,
        )

    # --- shared calls ---------------------------------------------------------------------------

    async def _set_active(self, color: Color, retry: RetryPolicy) -> None:
        await self._call(
            ssm.set_active_color,
            SetActiveColorInput(
                region=self._env.region, ssm_prefix=self._env.ssm_prefix, color=color
            ),
            summary=f"SSM: {color} is the active color",
            retry=retry,
        )

    async def _route_all_to(self, color: Color, retry: RetryPolicy) -> None:
        await self._call(
            traffic.switch_traffic,
            SwitchTrafficInput(**self._router_input().model_dump(), to_color=color),
            summary=f"send all traffic to {color}",
            retry=retry,
        )
        self._status.active_color_after = color

    async def _set_version(self, color: Color, version: str | None, retry: RetryPolicy) -> None:
        await self._call(
            ssm.set_color_version,
            SetColorVersionInput(
                region=self._env.region,
                ssm_prefix=self._env.ssm_prefix,
                color=color,
                version=version,
            ),
            summary=f"SSM: {color} runs {version or '(none)'}",
            retry=retry,
        )
        self._status.versions_after[color] = version

    async def _call(
        self,
        activity: Callable[[ArgT], ResultT],
        arg: ArgT,
        *,
        summary: str,
        retry: RetryPolicy = CALL_RETRY,
    ) -> ResultT:
        """Run an activity; its failure becomes a StepFailed carrying AWS's own message."""
        try:
            return await workflow.execute_activity(
                activity,
                arg,
                start_to_close_timeout=CALL_TIMEOUT,
                retry_policy=retry,
                summary=summary,
            )
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, FailureError) else str(err)
            error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
            raise StepFailed(
                f"{summary}: {message}", error_type or type(cause or err).__name__
            ) from err

    def _service(self, color: Color) -> ServiceRef:
        return ServiceRef.of(self._env.region, self._env.ssm_prefix, color, self._env.color(color))

    def _router_input(self) -> RouterInput:
        env = self._env
        return RouterInput(region=env.region, router=env.router, blue=env.blue, green=env.green)

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
        self._update_details()

    def _update_details(self) -> None:
        workflow.set_current_details(describe(self._status, workflow.now()))
