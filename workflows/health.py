"""The wait for the new color's health as a workflow of its own (see workflows/long_wait.py).

The latest observation and the number of checks are in this workflow's current details in the
Web UI, and in its ``progress`` query.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import ecs
    from models.health import HealthProgress, HealthRequest
    from models.observations import HealthObservation
    from workflows.calls import Calls
    from workflows.details import checks
    from workflows.long_wait import run_child_wait


def on_revision(seen: HealthObservation, task_definition_arn: str | None) -> HealthObservation:
    """``seen``, not healthy unless the service runs ``task_definition_arn``: a healthy service
    still on the old revision is not the new version."""
    if seen.healthy and seen.task_definition_arn != task_definition_arn:
        return seen.model_copy(
            update={"healthy": False, "reason": f"still on {seen.task_definition_arn}"}
        )
    return seen


@workflow.defn(name="WaitUntilHealthy")
class WaitUntilHealthy:
    """Check the new color's health until it is healthy or the deadline; return the progress.

    Started by ``BlueGreenDeployment`` as ``<deployment ID>-health``, and cancelled by it when
    the deployment is rolled back. Query ``progress`` for a :class:`HealthProgress` at any time.
    """

    @workflow.init
    def __init__(self, request: HealthRequest) -> None:
        self._progress = request.progress.model_copy(deep=True)

    @workflow.query
    def progress(self) -> HealthProgress:
        """The checks so far (in every run) and the latest observation."""
        return self._progress

    @workflow.run
    async def run(self, request: HealthRequest) -> HealthProgress:
        calls = Calls()

        async def is_healthy() -> bool:
            seen = await calls.activity(
                ecs.check_health,
                request.check,
                summary=f"is {request.color} healthy?",
                read_only=True,
            )
            seen = on_revision(seen, request.task_definition_arn)
            self._progress.checks += 1
            self._progress.last = seen
            workflow.set_current_details(_describe(request, self._progress))
            return seen.healthy

        self._progress.healthy = await run_child_wait(
            is_healthy, request, self._progress, f"{request.color} health"
        )
        return self._progress


def _describe(request: HealthRequest, progress: HealthProgress) -> str:
    """The current details: the latest observation, how many checks so far, until when."""
    last = progress.last
    return "\n".join(
        [
            f"**{request.deployment_id}: is {request.color} healthy?**",
            "",
            f"- health: **{last.reason}** at {last.checked_at:%H:%M:%S} UTC"
            if last
            else "- health: not checked yet",
            f"- {checks(progress.checks)} so far, until {request.until:%Y-%m-%d %H:%M:%S} UTC",
        ]
    )
