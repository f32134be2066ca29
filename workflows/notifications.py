"""When a deployment tells people, and what it says: the workflows' side of ``notify``.

The workflows only decide; activities/notify.py sends, in the background: a deployment never
waits for a message except before it closes (so that its last message is sent), and a message
that cannot get through after its retries (``NOTIFY_RETRY``) becomes a warning in the status,
never a failure. With no ``notify`` tables (every deployment started before they existed) no
activity is scheduled: such runs replay unchanged.

Events, each sent once (``docs/notifications.md``):

- ``awaiting_approval``: the deployment waits for a person's approval (``--require-approval``);
- ``switched``: the public traffic is on the new color (a multi-region deployment: once per
  wave, when every region of the wave that still runs has switched);
- the end, one of ``succeeded``, ``failed``, ``rolled_back`` and ``needs_a_person`` (a restoring
  step failed: production is not as it was).

A multi-region deployment speaks once for all its regions, from its parent: its regions' child
workflows never send. The one exception is a region that ends otherwise than the deployment
goes on: with ``--no-fail-fast``, a region that fails or rolls back while other regions keep
going gets a message of its own (``scope: "region"``), from the parent, when it has ended;
otherwise (fail fast, a rollback of everything, the last region to end) the deployment's final
message says how each region ended.
"""

import asyncio
from collections.abc import Callable, Iterable
from urllib.parse import quote

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities import notify
    from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
    from models.multi_region import MultiRegionRequest, MultiRegionStatus, RegionProgress
    from models.notices import Command, Notice, NotificationInput, RegionNotice
    from models.notifications import NotifyConfig, NotifyEvent
    from workflows.multi_region_details import overall_phase
    from workflows.options import HEARTBEAT_TIMEOUT, NOTIFY_DEADLINE, NOTIFY_RETRY, NOTIFY_TIMEOUT

_AFTER = {
    RetryState.MAXIMUM_ATTEMPTS_REACHED: f" after {NOTIFY_RETRY.maximum_attempts} attempts",
    RetryState.TIMEOUT: f" within {int(NOTIFY_DEADLINE.total_seconds())} s",
}
_VERB: dict[NotifyEvent, str] = {
    "awaiting_approval": "awaiting approval",
    "switched": "switched",
    "succeeded": "succeeded",
    "failed": "failed",
    "rolled_back": "rolled back",
    "needs_a_person": "needs a person",
}


class Notifier:
    """Sends notices to the targets that want them, each in a task of its own, one after the
    other to each target (a channel never reads "succeeded" before "switched"); remembers those
    in flight so that the workflow can wait for them before it closes."""

    def __init__(self, targets: list[NotifyConfig], warn: Callable[[str], None]) -> None:
        self.targets = targets
        self._warn = warn
        self._sending: list[asyncio.Task[None]] = []
        self._latest: dict[int, asyncio.Task[None]] = {}
        """Per target (its index), the latest notice's task: the next one starts after it."""

    def send(self, notice: Notice) -> None:
        """Start sending ``notice`` to every target that wants its event; returns at once."""
        for index, target in enumerate(self.targets):
            if target.wants(notice.event):
                after = self._latest.get(index)
                task = asyncio.create_task(self._deliver(target, notice, after))
                self._latest[index] = task
                self._sending.append(task)

    async def delivered(self) -> None:
        """Until every notice sent so far has been delivered or given up on (bounded by
        ``NOTIFY_DEADLINE``). A cancel of the workflow meanwhile waits for them too."""
        if self._all_done():
            return
        try:
            await workflow.wait_condition(self._all_done)
        except asyncio.CancelledError:
            await workflow.wait_condition(self._all_done)
            raise

    def _all_done(self) -> bool:
        return all(task.done() for task in self._sending)

    async def _deliver(
        self, target: NotifyConfig, notice: Notice, after: asyncio.Task[None] | None
    ) -> None:
        if after is not None:
            # Delivered or given up on; either way this one is next.
            await workflow.wait_condition(after.done)
        if target.web_ui_url:
            notice = notice.model_copy(update={"web_ui": web_ui_link(target.web_ui_url, notice)})
        try:
            await workflow.execute_activity(
                notify.send_notification,
                NotificationInput(kind=target.kind, url_env=target.url_env, notice=notice),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                schedule_to_close_timeout=NOTIFY_DEADLINE,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=f"notify {target.kind} ({target.url_env}): {notice.title}",
            )
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, FailureError) else str(err)
            warning = (
                f"{notice.event} notification ({target.kind}, {target.url_env}) not delivered"
                f"{_AFTER.get(err.retry_state, '') if err.retry_state else ''}: {message}"
            )
            workflow.logger.warning("%s", warning)
            self._warn(warning)


# --- one region -----------------------------------------------------------------------------------


class DeploymentNotices:
    """A one-region deployment's notices: ``changed()`` after every change of its status sends
    what the change calls for, once. A region of a multi-region deployment sends nothing: its
    parent speaks for every region (``RegionsNotices``)."""

    def __init__(
        self, request: DeploymentRequest, status: DeploymentStatus, changed: Callable[[], None]
    ) -> None:
        self._request = request
        self._status = status
        self._changed = changed
        has_parent = workflow.info().parent is not None
        self._notifier = Notifier([] if has_parent else request.target.notify, self._warn)
        self._sent: set[str] = set()

    def changed(self) -> None:
        """Send what the status now calls for and was not sent yet."""
        status = self._status
        if not self._notifier.targets or not _began(status):
            return
        if status.awaiting_step_approval and status.rollback is None:
            self._once(f"awaiting_approval-step-{status.traffic_step}", "awaiting_approval")
        if (
            status.phase == Phase.AWAITING_APPROVAL
            and self._request.require_approval
            and status.awaiting_approval_until is not None
            and status.approval is None
            and status.rollback is None
        ):
            self._once("awaiting_approval", "awaiting_approval")
        if _switched(status) and (status.phase != Phase.DONE or status.state == State.SUCCEEDED):
            self._once("switched", "switched")
        if status.phase == Phase.DONE:
            self._once("end", end_event(status.state, _needs_a_person([status])))

    async def delivered(self) -> None:
        """Until every notice sent has been delivered or given up on: before the workflow ends."""
        await self._notifier.delivered()

    def _warn(self, warning: str) -> None:
        self._status.warnings.append(warning)
        self._changed()

    def _once(self, key: str, event: NotifyEvent) -> None:
        if key in self._sent:
            return
        self._sent.add(key)
        self._notifier.send(self._notice(key, event))

    def _notice(self, key: str, event: NotifyEvent) -> Notice:
        status, request = self._status, self._request
        detail = region_notice(status)
        report = status.report
        where = where_to([detail], request.environment)
        failed_in = f" in {report.phase.value}" if report and event != "needs_a_person" else ""
        at_step = _at_step([detail]) if event == "awaiting_approval" else ""
        keeps_old = not request.shutdown_inactive_cluster
        return _notice(
            key,
            event,
            title=headline(
                event, f"{request.service} {request.version} {where}{at_step}", failed_in
            ),
            service=request.service,
            environment=request.environment,
            version=request.version,
            image=request.image,
            regions=[status.region],
            state=status.state,
            phase=status.phase,
            requested_by=request.requested_by,
            reason=report.reason if report else None,
            approval=status.approval,
            rollback=status.rollback,
            awaiting_approval_until=(
                status.step_until
                if status.awaiting_step_approval
                else status.awaiting_approval_until
            ),
            require_different_approver=(
                (request.require_approval or status.awaiting_step_approval)
                and request.target.approval.require_different_approver
            ),
            needs_a_person=list(report.compensation_errors) if report else [],
            details=[detail],
            warnings=list(status.warnings),
            commands=commands(
                event,
                request.environment,
                switch_back=[status.region] if keeps_old and event == "succeeded" else [],
                several_regions=False,
            ),
        )


# --- several regions ------------------------------------------------------------------------------


class RegionsNotices:
    """A multi-region deployment's notices, sent by its parent for every region:
    ``changed(rolling_back)`` after every change of its status (a region's report, a message,
    the end)."""

    def __init__(
        self, request: MultiRegionRequest, status: MultiRegionStatus, changed: Callable[[], None]
    ) -> None:
        self._request = request
        self._status = status
        self._changed = changed
        # in_region cannot change notify (models/config.py): every region has the same targets.
        self._notifier = Notifier(request.waves[0][0].notify, self._warn)
        self._sent: set[str] = set()
        self._switched: set[str] = set()
        """Regions seen with the traffic on their new color (a region rolled back since stays)."""
        self._told_steps: set[tuple[str, int]] = set()
        """(region, step) of the traffic steps waiting for approval that were told."""

    def changed(self, rolling_back: bool) -> None:
        """Send what the status now calls for and was not sent yet. ``rolling_back``: every
        region is being rolled back (a rollback, or fail fast): nothing to say but the end."""
        if not self._notifier.targets:
            return
        status = self._status
        regions = list(status.regions.values())
        self._switched.update(p.region for p in regions if p.status and _switched(p.status))
        if status.state != State.RUNNING:
            # Refused before any region started (the environment's lease): nothing happened.
            if any(p.started for p in regions):
                self._once("end", end_event(status.state, _needs_a_person(_statuses(regions))))
            return
        failing = any(_finished(p) and p.state() not in (None, State.SUCCEEDED) for p in regions)
        if rolling_back or status.rollback is not None or (failing and self._request.fail_fast):
            # Every region goes back (fail fast rolls them back once it hears of the failure).
            return
        if (
            status.require_approval
            and status.approval is None
            and any(p.at_gate() for p in regions)
        ):
            # One approval for every region, those of later waves too.
            self._once("awaiting_approval", "awaiting_approval", regions)
        # A traffic step waiting for approval: the approval releases the regions waiting then,
        # so a region that comes to a step later waits for another one, and hears of it.
        at_step = [
            p
            for p in regions
            if p.status
            and p.status.awaiting_step_approval
            and p.status.rollback is None
            and (p.region, p.status.traffic_step) not in self._told_steps
        ]
        if at_step:
            self._told_steps.update((p.region, p.status.traffic_step) for p in at_step if p.status)
            key = "awaiting_approval-step-" + "-".join(
                f"{p.region}.{p.status.traffic_step}" for p in at_step if p.status
            )
            self._once(key, "awaiting_approval", at_step)
        for number, wave in enumerate(status.waves, 1):
            in_wave = [status.regions[r] for r in wave]
            done = [p for p in in_wave if p.region in self._switched]
            if done and all(p in done or _finished(p) for p in in_wave):
                self._once(f"switched-wave-{number}", "switched", done)
        if not self._request.fail_fast:
            for progress in regions:
                ended_otherwise = _finished(progress) and progress.state() not in (
                    None,
                    State.SUCCEEDED,
                )
                others_go_on = any(p.started and not _finished(p) for p in regions)
                if ended_otherwise and others_go_on and progress.status:
                    event = end_event(progress.status.state, _needs_a_person([progress.status]))
                    self._once(f"{event}-{progress.region}", event, [progress], scope="region")

    async def delivered(self) -> None:
        """Until every notice sent has been delivered or given up on: before the workflow ends."""
        await self._notifier.delivered()

    def _warn(self, warning: str) -> None:
        self._status.warnings.append(warning)
        self._changed()

    def _once(
        self,
        key: str,
        event: NotifyEvent,
        about: list[RegionProgress] | None = None,
        scope: str = "deployment",
    ) -> None:
        if key in self._sent:
            return
        self._sent.add(key)
        self._notifier.send(self._notice(key, event, about, scope))

    def _notice(
        self, key: str, event: NotifyEvent, about: list[RegionProgress] | None, scope: str
    ) -> Notice:
        status, request = self._status, self._request
        everywhere = [p for p in status.regions.values() if p.started or p.status]
        regions = about or everywhere or list(status.regions.values())
        details = [_region_of(p) for p in status.regions.values()]
        shown = [d for d in details if d.region in {p.region for p in regions}]
        region_scope = scope == "region"
        reason = (
            shown[0].reason
            if region_scope
            else status.reason
            if event in ("failed", "rolled_back", "needs_a_person")
            else None
        )
        considered = _statuses(regions if region_scope else status.regions.values())
        waiting = [
            p.status.step_until
            if p.status.awaiting_step_approval
            else p.status.awaiting_approval_until
            for p in regions
            if p.status and (p.at_gate() or p.status.awaiting_step_approval)
        ]
        waiting_until = [until for until in waiting if until is not None]
        at_step = _at_step(shown) if event == "awaiting_approval" else ""
        tail = "; the other regions go on" if region_scope else ""
        keeps_old = event == "succeeded" and not request.shutdown_inactive_cluster
        kept = [r for r in status.regions if keeps_old and r in self._switched]
        return _notice(
            key,
            event,
            title=headline(
                event,
                f"{request.service} {request.version}"
                f" {where_to(shown, request.environment)}{at_step}{tail}",
            ),
            scope="region" if region_scope else "deployment",
            service=request.service,
            environment=request.environment,
            version=request.version,
            image=request.image,
            regions=[d.region for d in shown],
            state=status.state,
            phase=overall_phase(status),
            requested_by=request.requested_by,
            reason=reason,
            approval=status.approval,
            rollback=status.rollback,
            awaiting_approval_until=min(waiting_until) if waiting_until else None,
            require_different_approver=(request.require_approval or bool(at_step))
            and any(t.approval.require_different_approver for w in request.waves for t in w),
            needs_a_person=_needs_a_person(considered, with_region=True),
            details=details,
            warnings=list(status.warnings),
            commands=commands(
                "switched" if region_scope else event,
                request.environment,
                switch_back=kept,
                several_regions=True,
            ),
        )


# --- what a notice says -------------------------------------------------------------------------


def end_event(state: State, needs_a_person: list[str]) -> NotifyEvent:
    """The event that ends a deployment (or a region) in ``state``."""
    if state == State.SUCCEEDED:
        return "succeeded"
    if needs_a_person:
        return "needs_a_person"
    return "rolled_back" if state == State.ROLLED_BACK else "failed"


def headline(event: NotifyEvent, what: str, failed_in: str = "") -> str:
    """A notice's title: ``switched game 2 → green (prod, us-west-2)``, ``failed in
    waiting_for_health: game 2 → green (prod, us-west-2)``."""
    if event == "switched":
        return f"switched {what}"
    return f"{_VERB[event]}{failed_in}: {what}"


def region_notice(status: DeploymentStatus, wave: int | None = None) -> RegionNotice:
    """One region, as its deployment's status has it."""
    report = status.report
    return RegionNotice(
        region=status.region,
        workflow_id=status.deployment_id,
        wave=wave,
        state=status.state,
        phase=status.phase,
        active_color_before=status.active_color_before,
        target_color=status.target_color,
        traffic_on=status.active_color_after,
        versions_before=dict(status.versions_before),
        versions_after=dict(status.versions_after),
        traffic_plan=list(status.traffic_plan),
        traffic_step=status.traffic_step,
        awaiting_step_approval=status.awaiting_step_approval,
        reason=report.reason if report else None,
        failed_in=report.phase if report else None,
        restored=list(report.compensation) if report else [],
        not_restored=list(report.compensation_errors) if report else [],
        warnings=list(status.warnings),
    )


def where_to(details: list[RegionNotice], environment: str) -> str:
    """``→ green (prod, us-west-2, us-east-1)``; regions going to different colors each say
    theirs, ``(prod: us-west-2 → green, us-east-1 → blue)``; none known, ``(prod, us-west-2)``."""
    regions = ", ".join(d.region for d in details)
    colors = {d.target_color for d in details if d.target_color}
    if not colors:
        return f"({environment}, {regions})"
    if len(colors) == 1:
        # A region that has not read its colors yet (a later wave) is taken to go the same way.
        return f"→ {next(iter(colors))} ({environment}, {regions})"
    each = ", ".join(f"{d.region} → {d.target_color or '?'}" for d in details)
    return f"({environment}: {each})"


def commands(
    event: NotifyEvent, environment: str, *, switch_back: list[str], several_regions: bool
) -> list[Command]:
    """What a person can do about ``event``, for the deployment this workflow is: approve and
    roll back while it waits; roll back after the switch; switch back after a success that kept
    the old color running; the status always."""
    info = workflow.info()
    deployment = info.workflow_id
    namespace = "" if info.namespace == "default" else f" --namespace {info.namespace}"
    update = f"temporal workflow update execute{namespace} --workflow-id {deployment}"
    approve = Command(
        action="approve",
        client=f"python client.py approve {deployment}",
        temporal=f"""{update} --name approve --input '{{"by": "your-name"}}'""",
    )
    rollback = Command(
        action="roll back",
        client=f'python client.py rollback {deployment} --reason "what is wrong"',
        temporal=(
            f"""{update} --name rollback"""
            """ --input '{"reason": "what is wrong", "by": "your-name"}'"""
        ),
    )
    status = Command(
        action="status",
        client=f"python client.py status {deployment}",
        temporal=f"temporal workflow query{namespace} --workflow-id {deployment} --name status",
    )
    if event == "awaiting_approval":
        return [approve, rollback, status]
    if event == "switched":
        return [rollback, status]
    switches = [
        Command(
            action="switch back",
            client=f"python client.py switch --environment {environment}"
            + (f" --region {region}" if several_regions else ""),
        )
        for region in switch_back
    ]
    return [*switches, status]


def web_ui_link(base: str, notice: Notice) -> str:
    """The deployment's run in the Temporal Web UI at ``base``."""
    parts = (notice.namespace, notice.deployment_id, notice.run_id)
    namespace, workflow_id, run_id = (quote(part, safe="") for part in parts)
    return f"{base}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history"


def _notice(key: str, event: NotifyEvent, **fields: object) -> Notice:
    """A notice about this workflow, now, identified by ``key`` among its notices."""
    info = workflow.info()
    return Notice.model_validate(
        {
            "notification_id": f"{info.workflow_id}/{info.run_id}/{key}",
            "event": event,
            "at": workflow.now(),
            "deployment_id": info.workflow_id,
            "run_id": info.run_id,
            "namespace": info.namespace,
            **fields,
        }
    )


def _began(status: DeploymentStatus) -> bool:
    """Whether the deployment began its sequence. One refused before (another operation holds
    the environment's lease) read and changed nothing, and client.py said so: no message."""
    return any(entry.phase == Phase.SETTING_UP for entry in status.phases)


def _at_step(details: list[RegionNotice]) -> str:
    """`` at 10% (step 1 of 3)`` for regions holding a traffic step for approval, else ``""``."""
    held = [d for d in details if d.awaiting_step_approval and d.traffic_step]
    if not held:
        return ""
    first = min(held, key=lambda d: d.traffic_step)
    percent = first.traffic_plan[first.traffic_step - 1]
    return f" at {percent}% (step {first.traffic_step} of {len(first.traffic_plan)})"


def _switched(status: DeploymentStatus) -> bool:
    """The traffic is on the new color, and the switch (with its reconnect notice) is over."""
    return (
        status.target_color is not None
        and status.active_color_after == status.target_color
        and status.phase not in (Phase.SWITCHING, Phase.COMPENSATING)
    )


def _finished(progress: RegionProgress) -> bool:
    status = progress.status
    return progress.ended or (status is not None and status.phase == Phase.DONE)


def _statuses(regions: Iterable[RegionProgress]) -> list[DeploymentStatus]:
    return [p.status for p in regions if p.status is not None]


def _region_of(progress: RegionProgress) -> RegionNotice:
    if progress.status is None:
        return RegionNotice(
            region=progress.region, workflow_id=progress.workflow_id, wave=progress.wave + 1
        )
    return region_notice(progress.status, progress.wave + 1)


def _needs_a_person(statuses: list[DeploymentStatus], with_region: bool = False) -> list[str]:
    """Every restoring step that failed, ``<region>: …`` with ``with_region``."""
    return [
        f"{status.region}: {error}" if with_region else error
        for status in statuses
        if status.report
        for error in status.report.compensation_errors
    ]
