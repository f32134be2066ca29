"""The bake's alarm checks as a workflow of their own, so a long bake keeps every history small.

See workflows/long_wait.py. The latest alarm states and the number of checks are in this
workflow's current details in the Web UI, and in its ``progress`` query.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import alarms
    from models.activities import AlarmsInput
    from models.bake import BakeProgress, BakeRequest
    from models.durations import format_duration
    from models.observations import AlarmState
    from workflows.calls import Calls
    from workflows.details import checks
    from workflows.long_wait import run_child_wait


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


@workflow.defn(name="WatchBakeAlarms")
class WatchBakeAlarms:
    """Read the bake's alarms until one is in ALARM or the bake is over; return the progress.

    Started by ``BlueGreenDeployment`` as ``<deployment ID>-bake``, and cancelled by it when the
    deployment is rolled back. Query ``progress`` for a :class:`BakeProgress` at any time.
    """

    @workflow.init
    def __init__(self, request: BakeRequest) -> None:
        self._progress = request.progress.model_copy(deep=True)

    @workflow.query
    def progress(self) -> BakeProgress:
        """The checks so far (in every run) and the latest alarm states."""
        return self._progress

    @workflow.run
    async def run(self, request: BakeRequest) -> BakeProgress:
        calls = Calls()

        async def alarm_fired() -> bool:
            states = await read_alarms(calls, request.alarms)
            self._progress.checks += 1
            self._progress.last = states
            workflow.set_current_details(_describe(request, self._progress))
            return bool(firing(states))

        self._progress.fired = await run_child_wait(alarm_fired, request, self._progress, "alarm")
        return self._progress


def _describe(request: BakeRequest, progress: BakeProgress) -> str:
    """The current details: the latest alarm states, how many checks so far, until when."""
    states = ", ".join(f"{a.name} **{a.state}**" for a in progress.last) or "not read yet"
    lines = [
        f"**bake of {request.deployment_id}: watching alarms**",
        "",
        f"- alarms: {states}",
        f"- {checks(progress.checks)} so far, every {format_duration(request.poll_interval)},"
        f" until {request.until:%Y-%m-%d %H:%M:%S} UTC",
    ]
    lines += [f"- {a.name} in ALARM: {a.reason}" for a in firing(progress.last)]
    return "\n".join(lines)
