"""Follow deployments on Temporal — one region or several alike: their IDs, handles, statuses."""

import asyncio
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.deployment import DeploymentRequest, DeploymentStatus, State
from models.errors import BlueGreenError
from models.multi_region import MultiRegionRequest, MultiRegionStatus
from workflows.deployment import BlueGreenDeployment
from workflows.waits import watching

AnyStatus = DeploymentStatus | MultiRegionStatus
AnyRequest = DeploymentRequest | MultiRegionRequest
Handle = WorkflowHandle[BlueGreenDeployment, DeploymentStatus]
AnyHandle = WorkflowHandle[Any, Any]
StatusT = TypeVar("StatusT", bound=AnyStatus)
POLL_INTERVAL = 1.0
QUERY_TIMEOUT = timedelta(seconds=5)


def deployment_id(service: str, environment: str) -> str:
    """One ID per service and environment: Temporal itself refuses a second running deployment."""
    return f"deploy-{service}-{environment}"


def switch_id(service: str, environment: str) -> str:
    """One switch at a time per service and environment, as for deployments."""
    return f"switch-{service}-{environment}"


def handle_for(client: Client, workflow_id: str) -> Handle:
    """A handle on the latest run of a one-region deployment, typed for its messages and result."""
    return client.get_workflow_handle_for(BlueGreenDeployment.run, workflow_id)


async def describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The latest run with this ID, or None when there is none."""
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise BlueGreenError(f"cannot look up {workflow_id}: {err.message}") from None


async def ended_status(handle: AnyHandle, status_type: type[StatusT]) -> StatusT:
    """The status a deployment ended with: its result, or the status its failure carries."""
    try:
        return _as(status_type, await handle.result())
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "DeploymentFailed":
            return _as(status_type, cause.details[0])
        # Cancelled or terminated: the workflow's own last word, if a worker can answer.
        status = await current_status(handle, status_type)
        if status is None:
            raise BlueGreenError(f"deployment {handle.id} ended without a status: {err}") from None
        if status.state == State.RUNNING:
            status.state = State.FAILED
        return status


async def current_status(handle: AnyHandle, status_type: type[StatusT]) -> StatusT | None:
    """The ``status`` query, or None when no worker answers in time."""
    try:
        answer = await handle.query("status", result_type=status_type, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return None
    return _as(status_type, answer)


async def with_watch_progress(client: Client, status: AnyStatus) -> None:
    """Fill in the latest health check, alarm states of a bake, or count of a drain, from the
    child workflow that runs the wait (workflows/long_wait.py).

    The deployment itself learns them only when the wait ends: a days-long wait would otherwise
    fill its history. Without an answer the status stays as the deployment has it.
    """
    regions = status.regions.values() if isinstance(status, MultiRegionStatus) else ()
    for one in [status] if isinstance(status, DeploymentStatus) else [r.status for r in regions]:
        found = watching(one) if one else None
        if one is None or found is None:
            continue
        wait, watch = found
        try:
            progress = await client.get_workflow_handle(watch).query(
                "progress", result_type=wait.progress_type, rpc_timeout=QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError):
            continue
        wait.record(one, progress)


def _as(status_type: type[StatusT], value: Any) -> StatusT:
    """``value`` (a status, or its JSON form from a failure's details) as a ``status_type``."""
    return cast(StatusT, status_type.model_validate(value))


async def final_status(handle: Handle) -> DeploymentStatus:
    """``ended_status`` of a one-region deployment."""
    return await ended_status(handle, DeploymentStatus)


async def query_status(handle: Handle) -> DeploymentStatus | None:
    """``current_status`` of a one-region deployment."""
    return await current_status(handle, DeploymentStatus)


async def follow(
    client: Client,
    handle: AnyHandle,
    status_type: type[StatusT],
    on_status: Callable[[StatusT], None],
) -> StatusT:
    """Call ``on_status`` with each status seen until the deployment ends; return the final one."""
    result = asyncio.ensure_future(ended_status(handle, status_type))
    try:
        while not result.done():
            status = await current_status(handle, status_type)
            if status is not None:
                await with_watch_progress(client, status)
                on_status(status)
            await asyncio.wait({result}, timeout=POLL_INTERVAL)
        final = result.result()
    finally:
        result.cancel()
    on_status(final)
    return final


def print_now(line: str) -> None:
    """A progress line on stdout, flushed: a CI log shows it as it happens, not at the end."""
    print(line, flush=True)


def print_err(line: str) -> None:
    """Progress goes to stderr when stdout is reserved for a JSON document."""
    print(line, file=sys.stderr, flush=True)
