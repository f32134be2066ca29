"""Whether Temporal lets an operation run: the lease on its service and environment.

An operation's workflow (a deployment, a switch back) starts at once, and its first step takes
the environment's lease (workflows/lease.py): a child workflow ``lease-<service>-<environment>``
that only one operation at a time can hold. ``admitted`` waits for that step, reading the new
run's history, and names the operation that holds the lease when it was refused, so that
``client.py`` exits 4 with one line; a refused run has read and changed nothing.

A holder releases its lease before it closes, but a terminated one cannot: the server then
terminates the lease a moment after the holder. A start refused in that moment by a holder that
has already ended waits for the lease to go and starts again, for up to ``RELEASE_WAIT`` seconds.
"""

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from cli.workers import WorkerWatch
from models.errors import BlueGreenError, RefusedError
from workflows.lease import lease_id

H = TypeVar("H", bound=WorkflowHandle[Any, Any])

RELEASE_WAIT = 5.0
"""Seconds a start refused by an ended holder's lease waits for the server to end that lease."""
RELEASE_POLL = 0.1
DEPLOYMENTS = ("BlueGreenDeployment", "MultiRegionDeployment")
"""The workflow types that can be rolled back: the refusal says how."""

_CLOSED = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
)


@dataclass(frozen=True)
class Holder:
    """The operation holding a lease, as the lease's parent: None when it cannot be told."""

    workflow_id: str | None
    workflow_type: str | None
    running: bool
    """Whether the lease and its holder both still run (a holder that ended is releasing it)."""


async def admitted(
    client: Client,
    started: H,
    restart: Callable[[], Awaitable[H]],
    service: str,
    environment: str,
    task_queue: str,
    watch: WorkerWatch,
) -> H:
    """``started`` (or a run started again by ``restart``) once Temporal has let it run.

    RefusedError, naming the operation that runs, when another one holds the lease; the wait for
    the decision is ``watch``'s: NoWorkerError once no worker has polled ``task_queue`` for its
    timeout. A run that holds no lease (a worker older than the lease) or ended before the
    decision is let through: following it tells the rest.
    """
    lease = lease_id(service, environment)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RELEASE_WAIT
    handle = started
    while True:
        if await watch.bounded(client, task_queue, functools.partial(holds_lease, handle, lease)):
            return handle
        # Refused: the run ends at once, having done nothing (and its ID is free again).
        await watch.bounded(client, task_queue, functools.partial(_ended, handle))
        holder = await lease_holder(client, lease)
        if holder.running or loop.time() >= deadline:
            raise RefusedError(refusal(holder, service, environment))
        # The holder has just ended: once the server has ended its lease too, start again.
        await _released(client, lease, deadline)
        handle = await restart()


async def holds_lease(handle: WorkflowHandle[Any, Any], lease: str) -> bool:
    """Whether the run took ``lease`` (True) or was refused it (False), from its history; True
    too for a run that did something else first (it takes none) or ended before deciding."""
    async for event in handle.fetch_history_events(wait_new_event=True):
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            started = event.child_workflow_execution_started_event_attributes
            if started.workflow_execution.workflow_id == lease:
                return True
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
            if event.start_child_workflow_execution_failed_event_attributes.workflow_id == lease:
                return False
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            if event.start_child_workflow_execution_initiated_event_attributes.workflow_id != lease:
                return True
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED or kind in _CLOSED:
            return True
    return True


async def lease_holder(client: Client, lease: str) -> Holder:
    """Who holds ``lease``: its parent workflow, and whether both still run."""
    try:
        found = await client.get_workflow_handle(lease).describe()
        if not found.parent_id:
            return Holder(None, None, found.status == WorkflowExecutionStatus.RUNNING)
        parent = client.get_workflow_handle(found.parent_id, run_id=found.parent_run_id)
        holder = await parent.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return Holder(None, None, False)
        raise BlueGreenError(f"cannot look up {lease}: {err.message}") from None
    running = (found.status, holder.status) == (WorkflowExecutionStatus.RUNNING,) * 2
    return Holder(found.parent_id, holder.workflow_type, running)


def refusal(holder: Holder, service: str, environment: str) -> str:
    """The one line of a refusal: who runs, and what to do."""
    where = f"{service}/{environment}"
    if holder.workflow_id is None:
        return f"refused: another operation is running for {where}; wait for it to end"
    if not holder.running:
        return (
            f"refused: {holder.workflow_id} has just ended but {where} is not free yet;"
            " try again in a moment"
        )
    line = f"refused: {holder.workflow_id} is running for {where}; wait for it to end"
    if holder.workflow_type in DEPLOYMENTS:
        line += f" or roll it back (client.py rollback {holder.workflow_id} --reason …)"
    return line


async def _ended(handle: WorkflowHandle[Any, Any]) -> None:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def _released(client: Client, lease: str, deadline: float) -> None:
    """Return once ``lease`` no longer runs, or at ``deadline``."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        try:
            found = await client.get_workflow_handle(lease).describe()
        except RPCError:
            return
        if found.status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(RELEASE_POLL)
