"""The root span of a deployment's trace: ``client.py deploy``, around the start of its workflow.

The client's tracing interceptor puts the span's context on the start request, so the workflow's
spans, its activities' and its children's join this trace. In ``client.py`` it is the root; under
a caller's own span it joins the caller's trace.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace

from cli.deployments import AnyRequest, deployment_id
from runtime.tracing import tracer

DEPLOY_SPAN = "client.py deploy"


@contextmanager
def deploy_span(
    request: AnyRequest, regions: list[str], span_tracer: trace.Tracer | None = None
) -> Iterator[trace.Span]:
    """The span ``client.py deploy`` of a deployment to ``regions``, current for the block."""
    with (span_tracer or tracer()).start_as_current_span(
        DEPLOY_SPAN,
        kind=trace.SpanKind.CLIENT,
        attributes=deployment_attributes(request, regions),
    ) as span:
        yield span


def deployment_attributes(request: AnyRequest, regions: list[str]) -> dict[str, str | list[str]]:
    """What the root span says about a deployment."""
    return {
        "bluegreen.deployment_id": deployment_id(request.service, request.environment),
        "bluegreen.service": request.service,
        "bluegreen.environment": request.environment,
        "bluegreen.version": request.version,
        "bluegreen.image": request.image,
        "bluegreen.regions": regions,
        "bluegreen.requested_by": request.requested_by,
    }
