"""The kinds of deployment ``client.py`` knows — to one region, to several — each an object that
starts, follows and shows its own deployments; and which kind a request, workflow or status is.
"""

from opentelemetry.trace import Tracer
from temporalio.client import Client

from cli.deployment_kinds.kind import AnyKind
from cli.deployment_kinds.one_region import ONE_REGION
from cli.deployment_kinds.several_regions import SEVERAL_REGIONS
from cli.deployments import AnyHandle, AnyRequest, AnyStatus
from models.errors import BlueGreenError
from models.multi_region import MultiRegionRequest, MultiRegionStatus

KINDS: tuple[AnyKind, ...] = (ONE_REGION, SEVERAL_REGIONS)


def for_request(request: AnyRequest) -> AnyKind:
    """The kind a request starts: an environment with regions or waves deploys to several."""
    return SEVERAL_REGIONS if isinstance(request, MultiRegionRequest) else ONE_REGION


def for_workflow(workflow_id: str, workflow_type: str | None) -> AnyKind:
    """The kind of a deployment workflow; an error for any other workflow."""
    for kind in KINDS:
        if kind.workflow == workflow_type:
            return kind
    raise BlueGreenError(f"{workflow_id} is not a deployment (workflow type {workflow_type})")


def of_status(status: AnyStatus) -> AnyKind:
    """The kind whose status this is: for a caller that only has statuses (the live view's)."""
    return SEVERAL_REGIONS if isinstance(status, MultiRegionStatus) else ONE_REGION


async def start(
    client: Client, request: AnyRequest, task_queue: str, span_tracer: Tracer | None = None
) -> AnyHandle:
    """Start a deployment of whichever kind the request is: ``client.py deploy`` without output."""
    return await for_request(request).start(client, request, task_queue, span_tracer)
