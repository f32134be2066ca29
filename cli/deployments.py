"""Start, follow and look up deployments on Temporal — one region or several alike."""

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli import kinds
from cli.kinds import AnyRequest, AnyStatus
from models.deployment import DeploymentStatus, State
from models.errors import BlueGreenError, RefusedError
from models.multi_region import MultiRegionRequest, MultiRegionStatus
from workflows import search_attributes
from workflows.deployment import BlueGreenDeployment
from workflows.waits import watching

Handle = WorkflowHandle[BlueGreenDeployment, DeploymentStatus]
AnyHandle = WorkflowHandle[Any, Any]
StatusT = TypeVar("StatusT", bound=AnyStatus)
POLL_INTERVAL = 1.0
QUERY_TIMEOUT = timedelta(seconds=5)
_registered: dict[tuple[str, str], bool] = {}
"""(address, namespace) → whether it has every BlueGreen* search attribute: asked once."""


class DeploymentRunningError(RefusedError):
    """Another deployment of the same service and environment is still running."""


def deployment_id(service: str, environment: str) -> str:
    """One ID per service and environment: Temporal itself refuses a second running deployment."""
    return f"deploy-{service}-{environment}"


def switch_id(service: str, environment: str) -> str:
    """One switch at a time per service and environment, as for deployments."""
    return f"switch-{service}-{environment}"


def handle_for(client: Client, workflow_id: str) -> Handle:
    """A handle on the latest run of a one-region deployment, typed for its messages and result."""
    return client.get_workflow_handle_for(BlueGreenDeployment.run, workflow_id)


@dataclass(frozen=True)
class Found:
    """A deployment by ID: a handle on its latest run, how that run stands, its status type."""

    handle: AnyHandle
    description: WorkflowExecutionDescription
    status_type: type[AnyStatus]

    @property
    def running(self) -> bool:
        """Whether the latest run is still running."""
        return self.description.status == WorkflowExecutionStatus.RUNNING


async def describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The latest run with this ID, or None when there is none."""
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise BlueGreenError(f"cannot look up {workflow_id}: {err.message}") from None


async def find(client: Client, workflow_id: str) -> Found | None:
    """The deployment with this ID (one region or several), or None when there is none."""
    description = await describe(client, workflow_id)
    if description is None:
        return None
    status_type = kinds.status_type(workflow_id, description.workflow_type)
    handle = client.get_workflow_handle(workflow_id, result_type=status_type)
    return Found(handle, description, status_type)


async def start(client: Client, request: AnyRequest, task_queue: str) -> AnyHandle:
    """Start a deployment, or refuse with the running one's name, version and start time."""
    await _refuse_while_switching(client, switch_id(request.service, request.environment))
    workflow_id = deployment_id(request.service, request.environment)
    launch = kinds.launch(request)
    searchable = await search_attributes_registered(client)
    if searchable:
        # The workflow keeps the phase and state up to date only when told they exist.
        request = request.model_copy(update={"search_attributes": True})
    try:
        return await client.start_workflow(
            launch.workflow,
            request,
            id=workflow_id,
            task_queue=task_queue,
            result_type=launch.status_type,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=launch.summary(request),
            static_details=static_details(request),
            memo=launch.memo,
            search_attributes=_at_start(request) if searchable else None,
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


async def search_attributes_registered(client: Client) -> bool:
    """Whether the client's namespace has every BlueGreen* search attribute, with its type.

    Asked once per process and namespace. A namespace without them (or a server that cannot
    say, or will not tell this client) runs deployments without them: they only serve the Web
    UI's and ``temporal workflow list``'s queries, so they must never stop a deployment.
    """
    key = (client.service_client.config.target_host, client.namespace)
    if key not in _registered:
        try:
            answer = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=client.namespace), timeout=QUERY_TIMEOUT
            )
        except RPCError:
            _registered[key] = False
        else:
            found = answer.custom_attributes
            _registered[key] = all(
                found.get(k.name) == k.indexed_value_type.value for k in search_attributes.ALL
            )
    return _registered[key]


def static_details(request: AnyRequest) -> str:
    """The Web UI's details of a deployment, fixed at its start: what was asked, by whom."""
    lines = [f"requested by **{request.requested_by}**", "", f"- image: `{request.image}`"]
    if isinstance(request, MultiRegionRequest):
        waves = " | ".join(", ".join(t.region for t in wave) for wave in request.waves)
        lines.append(f"- regions, wave by wave: {waves}")
        if request.switch_together:
            lines.append("- the regions of a wave switch together")
        lines.append(
            "- a region that fails rolls the others back"
            if request.fail_fast
            else "- a region that fails leaves the others going"
        )
    lines.append(
        "- waits for approval before the switch"
        if request.require_approval
        else "- switches without waiting for approval"
    )
    if not request.switch_active_cluster:
        lines.append("- no switch: deploys and tests the inactive color only")
    elif request.shutdown_inactive_cluster:
        lines.append("- after the bake, drains the old color and scales it to zero")
    else:
        lines.append("- keeps the old color running after the switch (`client.py switch`)")
    return "\n".join(lines)


def _at_start(request: AnyRequest) -> TypedSearchAttributes:
    regions = (
        request.regions() if isinstance(request, MultiRegionRequest) else [request.target.region]
    )
    return search_attributes.at_start(
        request.service, request.environment, request.version, regions
    )


async def _refuse_while_switching(client: Client, workflow_id: str) -> None:
    # A deployment reads the active color at its start: a switch in flight would change it.
    description = await describe(client, workflow_id)
    if description is not None and description.status == WorkflowExecutionStatus.RUNNING:
        raise DeploymentRunningError(
            f"refused: {workflow_id} is switching traffic right now; deploy once it has ended"
        )


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


async def lookup(client: Client, workflow_id: str) -> AnyStatus:
    """The status of the latest run with this ID, running or ended, one region or several."""
    found = await find(client, workflow_id)
    if found is None:
        raise BlueGreenError(f"no deployment {workflow_id}")
    if found.running:
        status = await current_status(found.handle, found.status_type)
        if status is None:
            raise BlueGreenError(
                f"deployment {workflow_id} is running but no worker answers the status query"
            )
        await with_watch_progress(client, status)
        return status
    return await ended_status(found.handle, found.status_type)


async def recent(client: Client, limit: int) -> list[dict[str, Any]]:
    """Running and recent deployments (multi-region ones and their regions too), newest first.

    Each row: deployment_id, run_id, status (Temporal's), started, service, environment,
    region (the regions, comma-separated), version, state and phase. These come from the
    BlueGreen* search attributes where the deployment has them, else from its memo (a region
    of a multi-region deployment: its parent's) and Temporal's status.
    """
    query = " OR ".join(f'WorkflowType="{name}"' for name in kinds.STATUS_TYPES)
    executions = [execution async for execution in client.list_workflows(query, limit=limit)]
    memos = {(e.id, e.run_id): dict(await e.memo()) for e in executions}
    rows = []
    for execution in executions:
        searchable = execution.typed_search_attributes
        memo = memos[(execution.id, execution.run_id)]
        if execution.parent_id and searchable.get(search_attributes.SERVICE) is None:
            # A region of a multi-region deployment: its parent has the memo.
            memo = await _parent_memo(client, execution, memos)
            memo["region"] = execution.id.removeprefix(f"{execution.parent_id}-")
        regions = searchable.get(search_attributes.REGIONS) or (
            [memo["region"]] if memo.get("region") else memo.get("regions", ["?"])
        )
        rows.append(
            {
                "deployment_id": execution.id,
                "run_id": execution.run_id,
                "status": execution.status.name if execution.status else "?",
                "started": f"{execution.start_time:%Y-%m-%d %H:%M:%S}",
                "service": searchable.get(search_attributes.SERVICE) or memo.get("service", "?"),
                "environment": (
                    searchable.get(search_attributes.ENVIRONMENT) or memo.get("environment", "?")
                ),
                "region": ",".join(regions),
                "version": searchable.get(search_attributes.VERSION) or memo.get("version", "?"),
                "state": searchable.get(search_attributes.STATE) or _state_of(execution),
                "phase": searchable.get(search_attributes.PHASE) or "?",
            }
        )
    return rows


def _state_of(execution: WorkflowExecution) -> str:
    """A deployment's state as far as Temporal's status tells it (failed covers rolled back)."""
    status = execution.status
    if status == WorkflowExecutionStatus.RUNNING:
        return State.RUNNING.value
    if status == WorkflowExecutionStatus.COMPLETED:
        return State.SUCCEEDED.value
    return status.name.lower() if status else "?"


async def _parent_memo(
    client: Client, child: WorkflowExecution, memos: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    key = (child.parent_id or "", child.parent_run_id or "")
    if key not in memos:
        try:
            parent = client.get_workflow_handle(key[0], run_id=key[1] or None)
            memos[key] = dict(await (await parent.describe()).memo())
        except RPCError:
            memos[key] = {}
    return {k: v for k, v in memos[key].items() if k not in ("region", "regions", "waves")}


def print_now(line: str) -> None:
    """A progress line on stdout, flushed: a CI log shows it as it happens, not at the end."""
    print(line, flush=True)


def print_err(line: str) -> None:
    """Progress goes to stderr when stdout is reserved for a JSON document."""
    print(line, file=sys.stderr, flush=True)
