"""approve and rollback: the updates a running deployment takes.

They go to a one-region deployment or to a multi-region one alike: the same
update names, answered with the status of whichever it is. Every refusal — the deployment's
validator said no, it has ended, it does not exist, a deployment or a switch is in the way — is
a RefusedError (exit code 4) whose one line says what to do. An update waits for a worker to run
its handler: with none polling the deployment's task queue, NoWorkerError (exit code 5).
"""

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from cli.deployments import AnyStatus, ended_status
from cli.lookup import Found, find
from cli.workers import WorkerWatch
from models.errors import BlueGreenError, RefusedError
from models.messages import ApproveRequest, RollbackRequest

_REFUSALS = ("ApprovalRefused", "RollbackRefused")


async def approve(
    client: Client, deployment_id: str, watch: WorkerWatch, request: ApproveRequest
) -> tuple[Found, AnyStatus]:
    """Execute the ``approve`` update; the deployment and its status right after it was recorded."""
    return await _update(client, deployment_id, watch, "approve", request)


async def rollback(
    client: Client, deployment_id: str, watch: WorkerWatch, request: RollbackRequest
) -> tuple[Found, AnyStatus]:
    """Execute the ``rollback`` update; the deployment to follow and its status when accepted."""
    return await _update(client, deployment_id, watch, "rollback", request)


async def _update(
    client: Client,
    deployment_id: str,
    watch: WorkerWatch,
    name: str,
    request: ApproveRequest | RollbackRequest,
) -> tuple[Found, AnyStatus]:
    found = await find(client, deployment_id)
    if found is None:
        raise RefusedError(f"refused: there is no deployment {deployment_id}")
    if not found.running:
        raise await _ended(found, name)
    try:
        # The deployment's own task queue: a worker must poll the one it was started on.
        answer = await watch.bounded(
            client,
            found.description.task_queue,
            lambda: found.handle.execute_update(name, request, result_type=found.kind.status_type),
        )
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
    return await _ended(Found(found.handle, description, found.kind), action)


async def _ended(found: Found, action: str) -> BlueGreenError:
    """The refusal of ``action`` on a deployment that has ended: how it ended, what to do."""
    try:
        final = await ended_status(found.handle, found.kind.status_type)
    except BlueGreenError:
        status = found.description.status
        name = status.name.lower() if status else "ended"
        return RefusedError(f"refused: {found.handle.id} already ended ({name})")
    return RefusedError(f"refused: {found.kind.ended_advice(final, action)}")
