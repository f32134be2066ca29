"""The deployment's long waits, one :class:`Wait` each, and ``LongWait``, their child workflow.

How any of them runs (inline first, then in the child) is in workflows/long_wait.py. A fourth
wait is a fourth subclass here, listed in ``WAITS``, with its phase and the fields its figures
go into in models/deployment.py.
"""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import alarms, connections
    from models.activities import AlarmsInput, ConnectionsInput
    from models.deployment import DeploymentStatus, Phase, State
    from models.long_wait import HealthWaitInput, WaitProgress, WaitRequest
    from models.observations import AlarmState, ConnectionCount, HealthObservation
    from workflows.aws_steps import check_health
    from workflows.calls import Calls, StepFailed
    from workflows.long_wait import LONG_WAIT, Wait, run_in_child

HealthRequest = WaitRequest[HealthWaitInput, HealthObservation]
HealthProgress = WaitProgress[HealthObservation]
BakeRequest = WaitRequest[AlarmsInput, list[AlarmState]]
BakeProgress = WaitProgress[list[AlarmState]]
DrainRequest = WaitRequest[ConnectionsInput, ConnectionCount]
DrainProgress = WaitProgress[ConnectionCount]


class Health(Wait[HealthWaitInput, HealthObservation]):
    """The new color's health, until it is healthy on the new revision."""

    name, phase = "health", Phase.WAITING_FOR_HEALTH
    what, goal = "{color} health", "wait until {color} is healthy"
    request_type, progress_type = HealthRequest, HealthProgress

    async def check(self, calls: Calls, request: HealthRequest) -> HealthObservation:
        seen = await check_health(calls, request.check.service)
        return on_revision(seen, request.check.task_definition_arn)

    def met(self, seen: HealthObservation) -> bool:
        return seen.healthy

    def show_last(self, last: HealthObservation | None) -> list[str]:
        if last is None:
            return ["- health: not checked yet"]
        return [f"- health: **{last.reason}** at {last.checked_at:%H:%M:%S} UTC"]

    def record(self, status: DeploymentStatus, progress: HealthProgress) -> None:
        status.health_checks, status.last_health = progress.checks, progress.last


class Bake(Wait[AlarmsInput, list[AlarmState]]):
    """The bake's alarms, until one is in ALARM (which rolls back) or the bake is over."""

    name, phase = "bake", Phase.BAKING
    what, goal = "alarm", "watch the alarms while {color} bakes"
    request_type, progress_type = BakeRequest, BakeProgress

    async def check(self, calls: Calls, request: BakeRequest) -> list[AlarmState]:
        return await read_alarms(calls, request.check)

    def met(self, seen: list[AlarmState]) -> bool:
        return bool(firing(seen))

    def show_last(self, last: list[AlarmState] | None) -> list[str]:
        states = ", ".join(f"{a.name} **{a.state}**" for a in last or []) or "not read yet"
        return [f"- alarms: {states}"] + [
            f"- {a.name} in ALARM: {a.reason}" for a in firing(last or [])
        ]

    def record(self, status: DeploymentStatus, progress: BakeProgress) -> None:
        status.alarm_checks, status.last_alarms = progress.checks, progress.last or []


class Drain(Wait[ConnectionsInput, ConnectionCount]):
    """The old color's clients, until none is left or the drain's timeout."""

    name, phase = "drain", Phase.DRAINING
    what, goal = "{color} connections", "wait until {color}'s clients have left"
    request_type, progress_type = DrainRequest, DrainProgress

    async def check(self, calls: Calls, request: DrainRequest) -> ConnectionCount:
        # A failed count is advisory (None, with why), not an error: the timeout bounds the drain.
        try:
            return await calls.activity(
                connections.count_connections,
                request.check,
                summary=f"count the clients left on {request.color}"
                f" (version {request.check.version})"
                + (", reminding them to reconnect" if request.check.remind_url else ""),
                read_only=True,
            )
        except StepFailed as failure:
            return ConnectionCount(
                version=request.check.version,
                count=None,
                error=failure.reason,
                checked_at=workflow.now(),
            )

    def met(self, seen: ConnectionCount) -> bool:
        return seen.count == 0

    def show_last(self, last: ConnectionCount | None) -> list[str]:
        if last is None:
            return ["- clients left: not counted yet"]
        left = last.count if last.count is not None else "unknown"
        failed = [f"- last count failed: {last.error}"] if last.error else []
        return [f"- clients left: **{left}** at {last.checked_at:%H:%M:%S} UTC", *failed]

    def record(self, status: DeploymentStatus, progress: DrainProgress) -> None:
        status.connection_checks, status.last_connections = progress.checks, progress.last


HEALTH, BAKE, DRAIN = Health(), Bake(), Drain()
WAITS: dict[str, Wait[Any, Any]] = {wait.name: wait for wait in (HEALTH, BAKE, DRAIN)}


def watching(status: DeploymentStatus) -> tuple[Wait[Any, Any], str] | None:
    """The wait of the deployment's current phase and the child that took it over, if one did:
    the latest check is there, not in the status (a long wait would fill the deployment's
    history)."""
    wait = next((w for w in WAITS.values() if w.phase == status.phase), None)
    watch = status.watch_workflow_id
    if status.state == State.RUNNING and wait and watch and watch.endswith(f"-{wait.name}"):
        return wait, watch
    return None


@workflow.defn(name=LONG_WAIT)
class LongWait:
    """Go on with a deployment's long wait (``request.wait``: health, bake or drain) until it is
    met or its deadline, continuing as new as it goes; return the progress.

    Started by ``BlueGreenDeployment`` as ``<deployment ID>-<wait>``, and cancelled by it when
    the deployment is rolled back. Query ``progress`` for the checks so far and the latest
    observation (a :class:`WaitProgress`) at any time.
    """

    @workflow.init
    def __init__(self, request: WaitRequest[Any, Any]) -> None:
        self._wait = WAITS[request.wait]
        # The payload as the wait's own types: what a check looks at and what it saw.
        self._request = self._wait.request_type.model_validate(request.model_dump())

    @workflow.query
    def progress(self) -> WaitProgress[Any]:
        """The checks so far (in every run) and the latest observation."""
        return self._request.progress

    @workflow.run
    async def run(self, request: WaitRequest[Any, Any]) -> WaitProgress[Any]:
        """Check until met or the deadline; see the class docstring."""
        return await run_in_child(self._wait, self._request)


def on_revision(seen: HealthObservation, task_definition_arn: str | None) -> HealthObservation:
    """``seen``, not healthy unless the service runs ``task_definition_arn``: a healthy service
    still on the old revision is not the new version."""
    if seen.healthy and seen.task_definition_arn != task_definition_arn:
        return seen.model_copy(
            update={"healthy": False, "reason": f"still on {seen.task_definition_arn}"}
        )
    return seen


async def read_alarms(calls: Calls, request: AlarmsInput) -> list[AlarmState]:
    """The alarms' states now (a read: a rollback abandons it)."""
    return await calls.activity(
        alarms.read_alarm_states,
        request,
        summary=f"read CloudWatch alarms {', '.join(request.alarm_names)}",
        read_only=True,
    )


def firing(states: list[AlarmState]) -> list[AlarmState]:
    """The alarms in ALARM."""
    return [a for a in states if a.state == "ALARM"]
