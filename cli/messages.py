"""What people send to a deployment (approve, rollback), and switching back to the other color.

Each refusal — the deployment's validator said no, it has ended, it does not exist, a deployment
or a switch is in the way — is a RefusedError (exit code 4) whose one line says what to do.
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

from cli import deployments
from cli.deployments import Handle
from models.deployment import DeploymentStatus, State
from models.errors import BlueGreenError, RefusedError
from models.messages import ApproveRequest, RollbackRequest
from models.switch import SwitchRequest, SwitchResult
from workflows.deployment import BlueGreenDeployment
from workflows.switch_back import SwitchBack

SwitchHandle = WorkflowHandle[SwitchBack, SwitchResult]
_REFUSALS = ("ApprovalRefused", "RollbackRefused")


# --- approve and rollback ---------------------------------------------------------------------


async def approve(client: Client, deployment_id: str, request: ApproveRequest) -> DeploymentStatus:
    """Execute the ``approve`` update; the status right after it was recorded."""
    handle = deployments.handle_for(client, deployment_id)
    try:
        return await handle.execute_update(BlueGreenDeployment.approve, request)
    except WorkflowUpdateFailedError as err:
        raise _refused(err, "approve") from None
    except RPCError as err:
        raise await _not_running(handle, err, "approve") from None


async def rollback(
    client: Client, deployment_id: str, request: RollbackRequest
) -> tuple[Handle, DeploymentStatus]:
    """Execute the ``rollback`` update; the handle to follow and the status when it was accepted."""
    handle = deployments.handle_for(client, deployment_id)
    try:
        return handle, await handle.execute_update(BlueGreenDeployment.rollback, request)
    except WorkflowUpdateFailedError as err:
        raise _refused(err, "rollback") from None
    except RPCError as err:
        raise await _not_running(handle, err, "rollback") from None


def approved_line(status: DeploymentStatus) -> str:
    """What ``client.py approve`` prints once the deployment took the approval."""
    by = status.approval.by if status.approval else "?"
    return (
        f"approved {status.deployment_id} as {by}: switching"
        f" {status.active_color_before} → {status.target_color}"
    )


def rollback_accepted_line(status: DeploymentStatus) -> str:
    """What ``client.py rollback`` prints once the deployment took the request."""
    record = status.rollback
    phase = (record.phase if record and record.phase else status.phase).value
    by = f" from {record.by}" if record else ""
    return f"rollback of {status.deployment_id}{by} accepted in {phase}: putting production back"


def rollback_exit_code(final: DeploymentStatus) -> int:
    """0 only when production is back as it was: rolled back, nothing left for a person."""
    restored = final.report is None or not final.report.compensation_errors
    return 0 if final.state == State.ROLLED_BACK and restored else 1


def _refused(err: WorkflowUpdateFailedError, action: str) -> BlueGreenError:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _REFUSALS:
        return RefusedError(f"refused: {cause.message}")
    return BlueGreenError(f"{action} failed: {cause}")


async def _not_running(handle: Handle, err: RPCError, action: str) -> BlueGreenError:
    """The error for an update the server did not deliver: the deployment is missing or ended."""
    if err.status != RPCStatusCode.NOT_FOUND:
        return BlueGreenError(f"{action} of {handle.id} not delivered: {err.message}")
    try:
        description = await handle.describe()
    except RPCError:
        return RefusedError(f"refused: there is no deployment {handle.id}")
    if description.status == WorkflowExecutionStatus.RUNNING:
        return BlueGreenError(f"{action} of {handle.id} not delivered: {err.message}; try again")
    try:
        final = await deployments.final_status(handle)
    except BlueGreenError:
        name = description.status.name.lower() if description.status else "ended"
        return RefusedError(f"refused: {handle.id} already ended ({name})")
    return RefusedError(f"refused: {ended_advice(final, action)}")


def ended_advice(status: DeploymentStatus, action: str) -> str:
    """How an ended deployment ended, and what to do instead of ``action``."""
    ended = f"{status.deployment_id} already ended ({status.state.value})"
    if action == "approve":
        return f"{ended}; nothing waits for approval"
    if status.state != State.SUCCEEDED:
        return f"{ended}; see client.py status {status.deployment_id} for what was restored"
    old = status.active_color_before
    if old is None or status.active_color_after == old:
        return f"{ended} without switching traffic: production is still on {old}"
    previous = status.versions_before.get(old)
    if not status.shutdown_inactive_cluster:
        return (
            f"{ended} and {old} still runs version {previous or '?'}; to send traffic back to it:"
            f" client.py switch --environment {status.environment}"
        )
    again = f"version {previous}" if previous else "the previous version"
    return f"{ended}; to go back, deploy {again} again"


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
    handle = deployments.handle_for(client, workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return
        raise BlueGreenError(f"cannot look up {workflow_id}: {err.message}") from None
    if description.status != WorkflowExecutionStatus.RUNNING:
        return
    status = await deployments.query_status(handle)
    phase = f" (phase {status.phase.value})" if status else ""
    raise RefusedError(
        f"refused: deployment {workflow_id}{phase} is still running; wait for it to end, or"
        f" client.py rollback {workflow_id} --reason …"
    )


async def _start_switch(client: Client, request: SwitchRequest, task_queue: str) -> SwitchHandle:
    workflow_id = deployments.switch_id(request.service, request.environment)
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
        )
    except WorkflowAlreadyStartedError:
        description = await client.get_workflow_handle(workflow_id).describe()
        raise RefusedError(
            f"refused: switch {workflow_id} (run {description.run_id}) started"
            f" {description.start_time:%Y-%m-%d %H:%M:%S} UTC is still running"
        ) from None
