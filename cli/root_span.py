"""The root span of a deployment's trace: ``client.py deploy``, around the start of its workflow."""

from opentelemetry import trace
from temporalio.client import Client

from cli import deployments
from cli.kinds import AnyRequest
from models.multi_region import MultiRegionRequest
from runtime.tracing import tracer

DEPLOY_SPAN = "client.py deploy"


def deployment_attributes(request: AnyRequest) -> dict[str, str | list[str]]:
    """What the root span says about a deployment."""
    regions = (
        request.regions() if isinstance(request, MultiRegionRequest) else [request.target.region]
    )
    return {
        "bluegreen.deployment_id": deployments.deployment_id(request.service, request.environment),
        "bluegreen.service": request.service,
        "bluegreen.environment": request.environment,
        "bluegreen.version": request.version,
        "bluegreen.image": request.image,
        "bluegreen.regions": regions,
        "bluegreen.requested_by": request.requested_by,
    }


async def start_deployment(
    client: Client,
    request: AnyRequest,
    task_queue: str,
    span_tracer: trace.Tracer | None = None,
) -> deployments.AnyHandle:
    """``deployments.start`` inside the deployment's root span, ``client.py deploy``.

    The client's tracing interceptor puts the span's context on the start request, so the
    workflow's spans, its activities' and its children's join this trace. In ``client.py`` it
    is the root; under a caller's own span it joins the caller's trace.
    """
    with (span_tracer or tracer()).start_as_current_span(
        DEPLOY_SPAN,
        kind=trace.SpanKind.CLIENT,
        attributes=deployment_attributes(request),
    ) as span:
        handle = await deployments.start(client, request, task_queue)
        span.set_attribute("bluegreen.run_id", handle.result_run_id or "")
        return handle
