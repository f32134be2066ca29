"""``client.py switch``: run SwitchBack — traffic back to the other color — to its end, unless a
deployment or another switch of the same environment is running; each refusal a RefusedError."""

from collections.abc import Awaitable

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from cli import leases
from cli.deployments import current_status, deployment_id, switch_id
from cli.lookup import find
from cli.starting import search_attributes_registered
from cli.workers import WorkerWatch
from models.errors import BlueGreenError, RefusedError
from models.switch import SwitchRequest, SwitchResult
from workflows import search_attributes
from workflows.switch_back import SwitchBack

SwitchHandle = WorkflowHandle[SwitchBack, SwitchResult]


async def switch(
    client: Client, request: SwitchRequest, task_queue: str, watch: WorkerWatch
) -> SwitchResult:
    """Run SwitchBack to its end, unless a deployment or another switch is running."""
    await _refuse_while_deploying(client, request)
    handle = await start_switch(client, request, task_queue, watch)
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "SwitchRefused":
            raise RefusedError(cause.message) from None
        if isinstance(cause, ApplicationError) and cause.type == "SwitchFailed":
            raise BlueGreenError(f"{handle.id}: {cause.message}") from None
        raise BlueGreenError(f"{handle.id} ended without switching: {cause or err}") from None


def switched_lines(result: SwitchResult) -> list[str]:
    """What ``client.py switch`` prints: one line, and a line per warning."""
    to = result.to_color
    line = (
        f"switched {result.service} {result.environment}: {result.from_color} → {to}"
        f" ({to} runs version {result.versions.get(to) or '?'}; healthy: {result.health.reason})"
    )
    return [line, *(f"  warning: {warning}" for warning in result.warnings)]


async def start_switch(
    client: Client, request: SwitchRequest, task_queue: str, watch: WorkerWatch
) -> SwitchHandle:
    """Start SwitchBack, and wait until Temporal has let it run: a RefusedError naming the
    operation that holds the environment otherwise (cli/leases.py)."""

    def start() -> Awaitable[SwitchHandle]:
        return _start_switch(client, request, task_queue)

    return await leases.admitted(
        client, await start(), start, request.service, request.environment, task_queue, watch
    )


async def _refuse_while_deploying(client: Client, request: SwitchRequest) -> None:
    workflow_id = deployment_id(request.service, request.environment)
    found = await find(client, workflow_id)
    if found is None or not found.running:
        return
    status = await current_status(found.handle, found.kind.status_type)
    where = f" ({found.kind.where_it_is(status)})" if status else ""
    raise RefusedError(
        f"refused: deployment {workflow_id}{where} is still running; wait for it to end, or"
        f" client.py rollback {workflow_id} --reason …"
    )


async def _start_switch(client: Client, request: SwitchRequest, task_queue: str) -> SwitchHandle:
    workflow_id = switch_id(request.service, request.environment)
    searchable = await search_attributes_registered(client)
    try:
        return await client.start_workflow(
            SwitchBack.run,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=(
                f"switch {request.service} {request.environment} back to the other color,"
                f" {request.target.region}"
            ),
            memo={
                "service": request.service,
                "environment": request.environment,
                "region": request.target.region,
                "requested_by": request.requested_by,
                "reason": request.reason,
            },
            # Who and where only: SwitchBack has no phases to keep up to date.
            search_attributes=(
                search_attributes.at_start(
                    request.service, request.environment, None, [request.target.region]
                )
                if searchable
                else None
            ),
        )
    except WorkflowAlreadyStartedError:
        description = await client.get_workflow_handle(workflow_id).describe()
        raise RefusedError(
            f"refused: switch {workflow_id} (run {description.run_id}) started"
            f" {description.start_time:%Y-%m-%d %H:%M:%S} UTC is still running"
        ) from None
