"""Traces: one OpenTelemetry trace per deployment, from ``client.py deploy`` to each activity.

The standard ``OTEL_*`` variables choose where spans go, for ``client.py`` and ``worker.py``
alike::

    OTEL_TRACES_EXPORTER=otlp                           # OTLP over HTTP, localhost:4318
    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318   # implies otlp
    OTEL_TRACES_EXPORTER=console                        # JSON spans on stderr
    OTEL_TRACES_EXPORTER=none                           # the default: no exporter, no-op spans
    OTEL_SERVICE_NAME=deployer                          # default bluegreen-client / -worker

The rest (``OTEL_EXPORTER_OTLP_HEADERS``, ``…_TIMEOUT``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``) is read by the OpenTelemetry SDK itself.

Temporal's ``TracingInterceptor`` (on the client, so every worker made from it has it too)
carries the context: ``client.py deploy`` (the root span, ``cli/root_span.py``) →
``StartWorkflow`` → ``RunWorkflow`` → ``StartActivity`` → ``RunActivity``, and through
``StartChildWorkflow`` into each region of a multi-region deployment.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.client import OutboundInterceptor, QueryWorkflowInput
from temporalio.contrib.opentelemetry import TracingInterceptor

from models.errors import ConfigError

TRACER_NAME = "bluegreen"
EXPORTERS = ("otlp", "console", "none")
"""What ``OTEL_TRACES_EXPORTER`` may name (a comma-separated list of them)."""
OTLP_PROTOCOL = "http/protobuf"
"""The one OTLP protocol installed (opentelemetry-exporter-otlp-proto-http)."""


def exporter_names() -> list[str]:
    """The exporters the environment asks for: ``OTEL_TRACES_EXPORTER``, else ``otlp`` when an
    OTLP endpoint is set, else none. An unknown name is a ``ConfigError`` (exit 2)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    value = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not value:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ["otlp"] if any(os.environ.get(name) for name in endpoints) else []
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={value}: unknown exporter {unknown[0]!r}"
            f" (use {', '.join(EXPORTERS)})"
        )
    return list(dict.fromkeys(name for name in names if name != "none"))


def span_exporters() -> list[SpanExporter]:
    """An exporter for each of :func:`exporter_names`, configured by the environment."""
    exporters: list[SpanExporter] = []
    for name in exporter_names():
        if name == "console":
            # stderr: client.py --json keeps stdout for its one JSON document.
            exporters.append(ConsoleSpanExporter(out=sys.stderr))
        else:
            exporters.append(_otlp_exporter())
    return exporters


def _otlp_exporter() -> SpanExporter:
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(variable, "").strip()
        if protocol:
            if protocol != OTLP_PROTOCOL:
                raise ConfigError(f"{variable}={protocol}: only {OTLP_PROTOCOL} is supported")
            break
    # Imported here: only a process that exports over OTLP pays for loading it.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout… from OTEL_EXPORTER_OTLP_*


def resource(default_service_name: str) -> Resource:
    """The SDK's resource from the environment, named ``default_service_name`` unless
    ``OTEL_SERVICE_NAME`` (or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``) says otherwise."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: default_service_name}))
    return detected


def tracer_provider(default_service_name: str) -> TracerProvider | None:
    """A provider exporting to :func:`span_exporters`, or None when there is none to export to."""
    exporters = span_exporters()
    if not exporters:
        return None
    provider = TracerProvider(resource=resource(default_service_name))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracing(default_service_name: str) -> TracerProvider | None:
    """Make :func:`tracer_provider` the process's provider; None: spans stay no-ops.

    Call it before :func:`runtime.connection.connect` and :func:`shutdown_tracing` before the
    process ends (``runtime.process_exit.exit_now`` skips ``atexit``), or use :func:`tracing`.
    """
    provider = tracer_provider(default_service_name)
    if provider is not None:
        trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export the spans still queued, then stop the exporters.

    Bounded by the OTLP exporter's timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s) when the
    collector does not answer.
    """
    if provider is not None:
        provider.shutdown()


@contextmanager
def tracing(default_service_name: str) -> Iterator[TracerProvider | None]:
    """:func:`configure_tracing` for the block, flushed and shut down when it ends::

    with tracing("bluegreen-client"):
        return asyncio.run(command(args))
    """
    provider = configure_tracing(default_service_name)
    try:
        yield provider
    finally:
        shutdown_tracing(provider)


def tracer() -> trace.Tracer:
    """This project's tracer on the process's provider (a no-op one unless configured)."""
    return trace.get_tracer(TRACER_NAME)


def tracing_interceptor(span_tracer: trace.Tracer | None = None) -> TracingInterceptor:
    """Temporal's tracing interceptor, for a client and every worker made from it.

    The client side leaves queries untraced: ``deploy --wait`` and ``rollback`` poll the
    ``status`` query every second, and each poll would otherwise be a trace of its own.
    """
    return _TracingInterceptor(span_tracer or tracer())


class _TracingInterceptor(TracingInterceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _QueriesUntraced(super().intercept_client(next), untraced=next)


class _QueriesUntraced(OutboundInterceptor):
    """Everything through the tracing interceptor but queries."""

    def __init__(self, traced: OutboundInterceptor, *, untraced: OutboundInterceptor) -> None:
        super().__init__(traced)
        self._untraced = untraced

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        return await self._untraced.query_workflow(input)
