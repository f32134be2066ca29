"""Start, follow and look up deployments on Temporal."""

import asyncio
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli.render import phase_line
from models.deployment import DeploymentRequest, DeploymentStatus, State
from models.errors import BlueGreenError, RefusedError
from workflows.deployment import BlueGreenDeployment

Handle = WorkflowHandle[BlueGreenDeployment, DeploymentStatus]
POLL_INTERVAL = 1.0
QUERY_TIMEOUT = timedelta(seconds=5)


class DeploymentRunningError(RefusedError):
    """Another deployment of the same service and environment is still running."""


def deployment_id(service: str, environment: str) -> str:
    """One ID per service and environment: Temporal itself refuses a second running deployment."""
    return f"deploy-{service}-{environment}"


def switch_id(service: str, environment: str) -> str:
    """One switch at a time per service and environment, as for deployments."""
    return f"switch-{service}-{environment}"


def handle_for(client: Client, workflow_id: str) -> Handle:
    """A handle on the latest run of a deployment, typed for its messages and result."""
    return client.get_workflow_handle_for(BlueGreenDeployment.run, workflow_id)


async def start(client: Client, request: DeploymentRequest, task_queue: str) -> Handle:
    """Start a deployment, or refuse with the running one's name, version and start time."""
    await _refuse_while_switching(client, switch_id(request.service, request.environment))
    workflow_id = deployment_id(request.service, request.environment)
    try:
        return await client.start_workflow(
            BlueGreenDeployment.run,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=(
                f"deploy {request.service} {request.version} to {request.environment},"
                f" {request.target.region}"
            ),
            memo={
                "service": request.service,
                "environment": request.environment,
                "version": request.version,
                "region": request.target.region,
                "requested_by": request.requested_by,
            },
        )
    except WorkflowAlreadyStartedError:
        running = client.get_workflow_handle(workflow_id)
        description = await running.describe()
        memo = await description.memo()
        raise DeploymentRunningError(
            f"refused: deployment {workflow_id} (run {description.run_id}) of version"
            f" {memo.get('version', '?')} started {description.start_time:%Y-%m-%d %H:%M:%S} UTC"
            f" by {memo.get('requested_by', '?')} is still running; wait for it to end"
        ) from None


async def _refuse_while_switching(client: Client, workflow_id: str) -> None:
    # A deployment reads the active color at its start: a switch in flight would change it.
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return
        raise BlueGreenError(f"cannot look up {workflow_id}: {err.message}") from None
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise DeploymentRunningError(
            f"refused: {workflow_id} is switching traffic right now; deploy once it has ended"
        )


async def final_status(handle: Handle) -> DeploymentStatus:
    """The status a deployment ended with: its result, or the report its failure carries."""
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "DeploymentFailed":
            return DeploymentStatus.model_validate(cause.details[0])
        # Cancelled or terminated: the workflow's own last word, if a worker can answer.
        status = await query_status(handle)
        if status is None:
            raise BlueGreenError(f"deployment {handle.id} ended without a status: {err}") from None
        if status.state == State.RUNNING:
            status.state = State.FAILED
        return status


async def query_status(handle: Handle) -> DeploymentStatus | None:
    """The ``status`` query, or None when no worker answers in time."""
    try:
        return await handle.query(BlueGreenDeployment.status, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return None


async def follow(handle: Handle, on_status: Callable[[DeploymentStatus], None]) -> DeploymentStatus:
    """Call ``on_status`` with each status seen until the deployment ends; return the final one."""
    result = asyncio.ensure_future(final_status(handle))
    try:
        while not result.done():
            status = await query_status(handle)
            if status is not None:
                on_status(status)
            await asyncio.wait({result}, timeout=POLL_INTERVAL)
        final = result.result()
    finally:
        result.cancel()
    on_status(final)
    return final


async def lookup(client: Client, workflow_id: str) -> DeploymentStatus:
    """The status of the latest run with this ID, running or ended."""
    handle = handle_for(client, workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        raise BlueGreenError(f"no deployment {workflow_id}: {err.message}") from None
    if description.status == WorkflowExecutionStatus.RUNNING:
        status = await query_status(handle)
        if status is None:
            raise BlueGreenError(
                f"deployment {workflow_id} is running but no worker answers the status query"
            )
        return status
    return await final_status(handle)


async def recent(client: Client, limit: int) -> list[dict[str, Any]]:
    """Running and recent deployments, newest first, as rows for a table."""
    rows = []
    query = f'WorkflowType="{BlueGreenDeployment.__name__}"'
    async for execution in client.list_workflows(query, limit=limit):
        memo = await execution.memo()
        rows.append(
            {
                "deployment_id": execution.id,
                "run_id": execution.run_id,
                "status": execution.status.name if execution.status else "?",
                "started": f"{execution.start_time:%Y-%m-%d %H:%M:%S}",
                "service": memo.get("service", "?"),
                "environment": memo.get("environment", "?"),
                "region": memo.get("region", "?"),
                "version": memo.get("version", "?"),
            }
        )
    return rows


def phase_printer(
    say: Callable[[str], None], already_shown: int = 0
) -> Callable[[DeploymentStatus], None]:
    """A ``follow`` callback that says each phase entered after the first ``already_shown``."""
    shown = already_shown

    def show_new_phases(status: DeploymentStatus) -> None:
        nonlocal shown
        for entry in status.phases[shown:]:
            say(phase_line(entry, status))
        shown = max(shown, len(status.phases))

    return show_new_phases


def print_now(line: str) -> None:
    """A progress line on stdout, flushed: a CI log shows it as it happens, not at the end."""
    print(line, flush=True)


def print_err(line: str) -> None:
    """Progress goes to stderr when stdout is reserved for a JSON document."""
    print(line, file=sys.stderr, flush=True)
