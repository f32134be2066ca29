"""Starting a deployment's workflow on Temporal: its ID, summary, details, memo and search
attributes, or a refusal while another deployment or a switch of the same environment runs."""

from typing import TYPE_CHECKING, Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from cli.deployments import (
    QUERY_TIMEOUT,
    AnyHandle,
    AnyRequest,
    deployment_id,
    describe,
    switch_id,
)
from models.errors import RefusedError
from workflows import search_attributes

if TYPE_CHECKING:  # the kinds start through this module
    from cli.deployment_kinds.kind import AnyKind

_registered: dict[tuple[str, str], bool] = {}
"""(address, namespace) → whether it has every BlueGreen* search attribute: asked once."""


class DeploymentRunningError(RefusedError):
    """Another deployment of the same service and environment is still running."""


async def start(client: Client, request: AnyRequest, task_queue: str, kind: "AnyKind") -> AnyHandle:
    """Start ``kind``'s workflow, or refuse with the running one's name, version and start time."""
    await _refuse_while_switching(client, switch_id(request.service, request.environment))
    workflow_id = deployment_id(request.service, request.environment)
    searchable = await search_attributes_registered(client)
    if searchable:
        # The workflow keeps the phase and state up to date only when told they exist.
        request = request.model_copy(update={"search_attributes": True})
    try:
        return await client.start_workflow(
            kind.workflow,
            request,
            id=workflow_id,
            task_queue=task_queue,
            result_type=kind.status_type,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=kind.static_summary(request),
            static_details=static_details(request, kind.placement_details(request)),
            memo=memo(request, kind.placement_memo(request)),
            search_attributes=_at_start(request, kind.regions(request)) if searchable else None,
        )
    except WorkflowAlreadyStartedError:
        running = client.get_workflow_handle(workflow_id)
        description = await running.describe()
        found = await description.memo()
        raise DeploymentRunningError(
            f"refused: deployment {workflow_id} (run {description.run_id}) of version"
            f" {found.get('version', '?')} started {description.start_time:%Y-%m-%d %H:%M:%S} UTC"
            f" by {found.get('requested_by', '?')} is still running; wait for it to end"
        ) from None


def memo(request: AnyRequest, placement: dict[str, Any]) -> dict[str, Any]:
    """The workflow's memo: what ``client.py list`` shows when there are no search attributes."""
    return {
        "service": request.service,
        "environment": request.environment,
        "version": request.version,
        "requested_by": request.requested_by,
        **placement,
    }


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


def static_details(request: AnyRequest, placement: list[str]) -> str:
    """The Web UI's details of a deployment, fixed at its start: what was asked, by whom;
    ``placement``: the lines only its kind has (regions, waves)."""
    lines = [f"requested by **{request.requested_by}**", "", f"- image: `{request.image}`"]
    lines += placement
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


def _at_start(request: AnyRequest, regions: list[str]) -> TypedSearchAttributes:
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
