"""The drain as a workflow of its own, so that waiting for days keeps every history small.

See workflows/long_wait.py. The latest count and the number of checks are in this workflow's
current details in the Web UI, and in its ``progress`` query.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import connections
    from models.activities import ConnectionsInput
    from models.colors import Color
    from models.drain import DrainProgress, DrainRequest
    from models.durations import format_duration
    from models.observations import ConnectionCount
    from workflows.calls import Calls, StepFailed
    from workflows.details import checks
    from workflows.long_wait import run_child_wait


async def count_clients(calls: Calls, request: ConnectionsInput, color: Color) -> ConnectionCount:
    """Count ``color``'s clients; a failed count is advisory (None, with why) and not an error."""
    try:
        return await calls.activity(
            connections.count_connections,
            request,
            summary=f"count the clients left on {color} (version {request.version})",
            read_only=True,
        )
    except StepFailed as failure:
        return ConnectionCount(
            version=request.version, count=None, error=failure.reason, checked_at=workflow.now()
        )


@workflow.defn(name="DrainConnections")
class DrainConnections:
    """Count the old color's clients until none are left or the deadline; return the progress.

    Started by ``BlueGreenDeployment`` as ``<deployment ID>-drain``, and cancelled by it when
    the deployment is rolled back. Query ``progress`` for a :class:`DrainProgress` at any time.
    """

    @workflow.init
    def __init__(self, request: DrainRequest) -> None:
        self._progress = request.progress.model_copy(deep=True)

    @workflow.query
    def progress(self) -> DrainProgress:
        """The checks so far (in every run) and the latest count."""
        return self._progress

    @workflow.run
    async def run(self, request: DrainRequest) -> DrainProgress:
        calls = Calls()

        async def is_drained() -> bool:
            seen = await count_clients(calls, request.connections, request.color)
            self._progress.checks += 1
            self._progress.last = seen
            workflow.set_current_details(_describe(request, self._progress))
            return seen.count == 0

        self._progress.drained = await run_child_wait(
            is_drained, request, self._progress, f"{request.color} connections"
        )
        return self._progress


def _describe(request: DrainRequest, progress: DrainProgress) -> str:
    """The current details: the latest count, how many checks so far, until when."""
    last = progress.last
    left = "?" if last is None else last.count if last.count is not None else "unknown"
    lines = [
        f"**drain {request.color}'s clients for {request.deployment_id}**",
        "",
        f"- clients left: **{left}** at {last.checked_at:%H:%M:%S} UTC"
        if last is not None
        else "- clients left: not counted yet",
        f"- {checks(progress.checks)} so far, every {format_duration(request.poll_interval)},"
        f" until {request.until:%Y-%m-%d %H:%M} UTC",
    ]
    if last is not None and last.error:
        lines.append(f"- last count failed: {last.error}")
    return "\n".join(lines)
