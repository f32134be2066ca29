"""approve, rollback and switch: the messages a running deployment takes, and the switch back.

approve and rollback go to a one-region deployment or to a multi-region one alike: the same
update names, answered with the status of whichever it is. Every refusal — the deployment's
validator said no, it has ended, it does not exist, a deployment or a switch is in the way — is
a RefusedError (exit code 4) whose one line says what to do.
"""

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli import deployments, kinds
from cli.deployments import Found
from cli.kinds import AnyStatus
from models.errors import BlueGreenError, RefusedError
from models.messages import ApproveRequest, RollbackRequest
from models.switch import SwitchRequest, SwitchResult
from workflows import search_attributes
from workflows.switch_back import SwitchBack

SwitchHandle = WorkflowHandle[SwitchBack, SwitchResult]
_REFUSALS = ("ApprovalRefused", "RollbackRefused")


# --- approve and rollback ---------------------------------------------------------------------


async def approve(client: Client, deployment_id: str, request: ApproveRequest) -> AnyStatus:
    """Execute the ``approve`` update; the status right after it was recorded."""
    _, approved = await _update(client, deployment_id, "approve", request)
    return approved


async def rollback(
    client: Client, deployment_id: str, request: RollbackRequest
) -> tuple[Found, AnyStatus]:
    """Execute the ``rollback`` update; the deployment to follow and its status when accepted."""
    return await _update(client, deployment_id, "rollback", request)


async def _update(
    client: Client, deployment_id: str, name: str, request: ApproveRequest | RollbackRequest
) -> tuple[Found, AnyStatus]:
    found = await deployments.find(client, deployment_id)
    if found is None:
        raise RefusedError(f"refused: there is no deployment {deployment_id}")
    if not found.running:
        raise await _ended(found, name)
    try:
        answer = await found.handle.execute_update(name, request, result_type=found.status_type)
    except WorkflowUpdateFailedError as err:
        raise _refused(err, name) from None
    except RPCError as err:
        raise await _not_delivered(found, err, name) from None
    return found, answer  # typed by result_type


def _refused(err: WorkflowUpdateFailedError, action: str) -> BlueGreenError:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _REFUSALS:
        return RefusedError(f"refused: {cause.message}")
    return BlueGreenError(f"{action} failed: {cause}")


async def _not_delivered(found: Found, err: RPCError, action: str) -> BlueGreenError:
    """The error for an update the server did not deliver: most likely the deployment just ended."""
    workflow_id = found.handle.id
    if err.status != RPCStatusCode.NOT_FOUND:
        return BlueGreenError(f"{action} of {workflow_id} not delivered: {err.message}")
    try:
        description = await found.handle.describe()
    except RPCError:
        return RefusedError(f"refused: there is no deployment {workflow_id}")
    if description.status == WorkflowExecutionStatus.RUNNING:
        return BlueGreenError(f"{action} of {workflow_id} not delivered: {err.message}; try again")
    return await _ended(Found(found.handle, description, found.status_type), action)


async def _ended(found: Found, action: str) -> BlueGreenError:
    """The refusal of ``action`` on a deployment that has ended: how it ended, what to do."""
    try:
        final = await deployments.ended_status(found.handle, found.status_type)
    except BlueGreenError:
        status = found.description.status
        name = status.name.lower() if status else "ended"
        return RefusedError(f"refused: {found.handle.id} already ended ({name})")
    return RefusedError(f"refused: {kinds.ended_advice(final, action)}")


# --- switch -----------------------------------------------------------------------------------


async def switch(client: Client, request: SwitchRequest, task_queue: str) -> SwitchResult:
    """Run SwitchBack to its end, unless a deployment or another switch is running."""
    await _refuse_while_deploying(client, request)
    handle = await _start_switch(client, request, task_queue)
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


async def _refuse_while_deploying(client: Client, request: SwitchRequest) -> None:
    workflow_id = deployments.deployment_id(request.service, request.environment)
    found = await deployments.find(client, workflow_id)
    if found is None or not found.running:
        return
    status = await deployments.current_status(found.handle, found.status_type)
    where = f" ({kinds.where_it_is(status)})" if status else ""
    raise RefusedError(
        f"refused: deployment {workflow_id}{where} is still running; wait for it to end, or"
        f" client.py rollback {workflow_id} --reason …"
    )


async def _start_switch(client: Client, request: SwitchRequest, task_queue: str) -> SwitchHandle:
    workflow_id = deployments.switch_id(request.service, request.environment)
    searchable = await deployments.search_attributes_registered(client)
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
