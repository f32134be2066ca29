"""``client.py list``: running and recent deployments, from search attributes or memos."""

from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from cli.deployment_kinds import KINDS
from models.deployment import State
from workflows import search_attributes


async def recent(client: Client, limit: int) -> list[dict[str, Any]]:
    """Running and recent deployments (multi-region ones and their regions too), newest first.

    Each row: deployment_id, run_id, status (Temporal's), started, service, environment,
    region (the regions, comma-separated), version, state and phase. These come from the
    BlueGreen* search attributes where the deployment has them, else from its memo (a region
    of a multi-region deployment: its parent's) and Temporal's status.
    """
    query = " OR ".join(f'WorkflowType="{kind.workflow}"' for kind in KINDS)
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
