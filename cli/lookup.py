"""A deployment by its ID: which kind it is, how its latest run stands, its status."""

from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus

from cli import deployment_kinds
from cli.deployment_kinds.kind import AnyKind
from cli.deployments import (
    AnyHandle,
    AnyStatus,
    current_status,
    describe,
    ended_status,
    with_watch_progress,
)
from models.errors import BlueGreenError


@dataclass(frozen=True)
class Found:
    """A deployment by ID: a handle on its latest run, how that run stands, its kind."""

    handle: AnyHandle
    description: WorkflowExecutionDescription
    kind: AnyKind

    @property
    def running(self) -> bool:
        """Whether the latest run is still running."""
        return self.description.status == WorkflowExecutionStatus.RUNNING


async def find(client: Client, workflow_id: str) -> Found | None:
    """The deployment with this ID (one region or several), or None when there is none."""
    description = await describe(client, workflow_id)
    if description is None:
        return None
    kind = deployment_kinds.for_workflow(workflow_id, description.workflow_type)
    handle = client.get_workflow_handle(workflow_id, result_type=kind.status_type)
    return Found(handle, description, kind)


async def lookup(client: Client, workflow_id: str) -> tuple[AnyKind, AnyStatus]:
    """The kind and status of the latest run with this ID, running or ended."""
    found = await find(client, workflow_id)
    if found is None:
        raise BlueGreenError(f"no deployment {workflow_id}")
    if found.running:
        status = await current_status(found.handle, found.kind.status_type)
        if status is None:
            raise BlueGreenError(
                f"deployment {workflow_id} is running but no worker answers the status query"
            )
        await with_watch_progress(client, status)
        return found.kind, status
    return found.kind, await ended_status(found.handle, found.kind.status_type)
