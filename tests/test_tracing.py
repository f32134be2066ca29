"""Traces: one per deployment, from client.py's root span through the workflow to each activity.

A deployment runs in-process on the time-skipping server (fake activities), started by
``deployment_kinds.start`` — what ``client.py deploy`` calls — on a client from
``runtime.connection.connect`` whose tracer writes to an in-memory exporter; the worker is made
from that client, so it carries the same interceptor. Then the exporter choice from ``OTEL_*``.
"""

import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli import deployment_kinds, deployments, root_span, starting
from local.processes import BIN
from local.processes import ROOT as REPO
from models.deployment import DeploymentStatus, State
from models.errors import ConfigError
from models.multi_region import MultiRegionStatus
from runtime import tracing
from runtime.connection import connect
from tests.factories import deployment_request
from tests.workflows.conftest import TEST_SERVER
from tests.workflows.driving import running_worker
from tests.workflows.driving_regions import REGIONS, regions_environment, regions_request
from tests.workflows.fake_aws import FakeAws
from tests.workflows.regional_fake_aws import RegionalFakeAws

ROOT = root_span.DEPLOY_SPAN
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture(scope="module")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's (tests/workflows has the session's own)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Where the test's tracer puts its spans, as each ends."""
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def tracer(exported: InMemorySpanExporter) -> Tracer:
    """A tracer of a provider of the test's own: the process's global one stays unset."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider.get_tracer("test")


@pytest.fixture
async def client(
    time_skipping: WorkflowEnvironment, tracer: Tracer, monkeypatch: pytest.MonkeyPatch
) -> Client:
    """``connect()`` as client.py and worker.py call it, against the time-skipping server."""
    for name in [n for n in os.environ if n.startswith("TEMPORAL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_ADDRESS", time_skipping.client.service_client.config.target_host)
    return await connect(tracer=tracer)


class Tree:
    """The finished spans of one test, by name and by parent."""

    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self.spans = list(spans)
        self.by_id = {span.context.span_id: span for span in self.spans}

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name}: {self.names()}"
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        assert span.parent.span_id in self.by_id, f"{span.name}: parent not exported"
        return self.by_id[span.parent.span_id]

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans if self.parent(s) is span]

    def names(self) -> list[str]:
        return sorted(span.name for span in self.spans)

    def trace_ids(self) -> set[int]:
        return {span.context.trace_id for span in self.spans}

    def activities(self, under: ReadableSpan, kind: str) -> Counter[str]:
        """``kind`` (StartActivity, RunActivity) spans below ``under``, by activity name."""
        return Counter(
            s.name.removeprefix(f"{kind}:")
            for s in self.spans
            if s.name.startswith(f"{kind}:") and self._below(s, under)
        )

    def _below(self, span: ReadableSpan, ancestor: ReadableSpan) -> bool:
        parent = self.parent(span)
        while parent is not None:
            if parent is ancestor:
                return True
            parent = self.parent(parent)
        return False

    def assert_activities_chain(self, workflow_context: ReadableSpan, calls: list[str]) -> None:
        """A StartActivity per call, child of the workflow's context, and its RunActivity."""
        starts = [s for s in self.children(workflow_context) if s.name.startswith("StartActivity:")]
        assert Counter(s.name.removeprefix("StartActivity:") for s in starts) == Counter(calls)
        for start in starts:
            (run,) = self.children(start)
            assert run.name == start.name.replace("StartActivity:", "RunActivity:")


# --- one region ------------------------------------------------------------------------------


async def test_a_deployment_is_one_trace_from_the_client_to_each_activity(
    client: Client, exported: InMemorySpanExporter, tracer: Tracer
) -> None:
    assert [type(i) for i in client.config()["interceptors"] if isinstance(i, TracingInterceptor)]
    aws = FakeAws()
    request = deployment_request(environment=f"trace-{uuid.uuid4().hex[:8]}")
    async with running_worker(client, aws) as task_queue:  # the worker inherits the interceptor
        handle = await deployment_kinds.start(client, request, task_queue, tracer)
        final = await deployments.ended_status(handle, DeploymentStatus)
        # client.py deploy --wait polls this every second: no span, no trace of its own.
        await deployments.current_status(handle, DeploymentStatus)
    assert final.state == State.SUCCEEDED

    tree = Tree(exported.get_finished_spans())
    assert len(tree.trace_ids()) == 1, tree.names()
    root = tree.one(ROOT)
    assert root.parent is None
    assert dict(root.attributes or {}) == {
        "bluegreen.deployment_id": handle.id,
        "bluegreen.service": "game",
        "bluegreen.environment": request.environment,
        "bluegreen.version": "2",
        "bluegreen.image": "registry.example.com/game:2",
        "bluegreen.regions": ("us-west-2",),
        "bluegreen.requested_by": "unknown",
        "bluegreen.run_id": handle.result_run_id,
    }
    start = tree.one("StartWorkflow:BlueGreenDeployment")
    assert tree.parent(start) is root
    assert tree.parent(tree.one("RunWorkflow:BlueGreenDeployment")) is start
    assert tree.parent(tree.one("CompleteWorkflow:BlueGreenDeployment")) is start
    tree.assert_activities_chain(start, aws.names())
    assert "read_color_state" in aws.names() and "scale_to_zero" in aws.names()
    assert not [name for name in tree.names() if "Query" in name]
    # The environment's lease, taken first and released last, is in the same trace.
    lease = tree.one("StartChildWorkflow:EnvironmentLease")
    assert tree.parent(lease) is start
    assert tree.parent(tree.one("RunWorkflow:EnvironmentLease")) is lease
    assert tree.parent(tree.one("SignalChildWorkflow:release")) is start


async def test_a_refused_start_is_an_error_span(
    client: Client, exported: InMemorySpanExporter, tracer: Tracer
) -> None:
    request = deployment_request(environment=f"trace-{uuid.uuid4().hex[:8]}")
    # A switch running for the same service and environment refuses the deployment.
    switch_id = deployments.switch_id(request.service, request.environment)
    await client.start_workflow("SwitchBack", id=switch_id, task_queue=f"none-{uuid.uuid4()}")
    try:
        with pytest.raises(starting.DeploymentRunningError):
            await deployment_kinds.start(client, request, "unused", tracer)
    finally:
        await client.get_workflow_handle(switch_id).terminate("end of test")

    root = Tree(exported.get_finished_spans()).one(ROOT)
    assert root.status.status_code.name == "ERROR"
    assert "switching traffic right now" in (root.status.description or "")


# --- several regions -------------------------------------------------------------------------


async def test_a_multi_region_deployment_is_one_trace_with_each_region_in_it(
    client: Client, exported: InMemorySpanExporter, tracer: Tracer
) -> None:
    regions = list(REGIONS[:2])
    environment = regions_environment(regions)
    aws = RegionalFakeAws.of(environment)
    request = regions_request(environment).model_copy(
        update={"environment": f"trace-{uuid.uuid4().hex[:8]}"}
    )
    async with running_worker(client, aws) as task_queue:
        handle = await deployment_kinds.start(client, request, task_queue, tracer)
        final = await deployments.ended_status(handle, MultiRegionStatus)
    assert final.state == State.SUCCEEDED

    tree = Tree(exported.get_finished_spans())
    assert len(tree.trace_ids()) == 1, tree.names()
    root = tree.one(ROOT)
    assert root.attributes is not None and root.attributes["bluegreen.regions"] == tuple(regions)
    parent = tree.one("StartWorkflow:MultiRegionDeployment")
    assert tree.parent(parent) is root
    assert tree.parent(tree.one("RunWorkflow:MultiRegionDeployment")) is parent
    children = tree.named("StartChildWorkflow:BlueGreenDeployment")
    assert len(children) == len(regions)
    assert all(tree.parent(child) is parent for child in children)
    for child in children:
        (run,) = [s for s in tree.children(child) if s.name == "RunWorkflow:BlueGreenDeployment"]
        assert run.attributes is not None
        region = str(run.attributes["temporalWorkflowID"]).removeprefix(f"{handle.id}-")
        tree.assert_activities_chain(child, aws.regions[region].names())


# --- the exporter, from OTEL_* -----------------------------------------------------------------


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable from the developer's environment; set those a test needs."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_variable_means_no_exporter_and_no_provider(otel_env: pytest.MonkeyPatch) -> None:
    assert tracing.exporter_names() == []
    assert tracing.tracer_provider("bluegreen-test") is None
    assert tracing.configure_tracing("bluegreen-test") is None  # the global stays no-op


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": " NONE "},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_none_or_disabled_means_no_exporter(
    otel_env: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        otel_env.setenv(name, value)
    assert tracing.span_exporters() == []
    assert tracing.tracer_provider("bluegreen-test") is None


def test_console_prints_spans_on_stderr(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_TRACES_EXPORTER", "console")
    (exporter,) = tracing.span_exporters()
    assert isinstance(exporter, ConsoleSpanExporter)
    assert exporter.out is sys.stderr  # client.py --json keeps stdout for its document


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    ],
)
def test_otlp_over_http_when_asked_for_or_an_endpoint_is_set(
    otel_env: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        otel_env.setenv(name, value)
    (exporter,) = tracing.span_exporters()
    assert isinstance(exporter, OTLPSpanExporter)


def test_both_exporters_at_once(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    kinds = [type(e) for e in tracing.span_exporters()]
    assert kinds == [OTLPSpanExporter, ConsoleSpanExporter]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "jaeger"},
            "OTEL_TRACES_EXPORTER=jaeger: unknown exporter 'jaeger' (use otlp, console, none)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "console,zipkin"},
            "OTEL_TRACES_EXPORTER=console,zipkin: unknown exporter 'zipkin'"
            " (use otlp, console, none)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only http/protobuf is supported",
        ),
    ],
)
def test_a_bad_value_is_a_config_error(
    otel_env: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        otel_env.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        tracing.configure_tracing("bluegreen-test")
    assert str(raised.value) == message
    assert raised.value.exit_code == 2


def test_the_service_name_defaults_per_program_and_otel_service_name_wins(
    otel_env: pytest.MonkeyPatch,
) -> None:
    assert tracing.resource("bluegreen-worker").attributes[SERVICE_NAME] == "bluegreen-worker"
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert tracing.resource("bluegreen-worker").attributes[SERVICE_NAME] == "from-attributes"
    otel_env.setenv("OTEL_SERVICE_NAME", "deployer")
    assert tracing.resource("bluegreen-worker").attributes[SERVICE_NAME] == "deployer"
    otel_env.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = tracing.tracer_provider("bluegreen-worker")
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes[SERVICE_NAME] == "deployer"
    provider.shutdown()


@pytest.mark.parametrize(("program", "name"), [("client.py", "client.py"), ("worker.py", "worker")])
def test_a_bad_exporter_is_one_line_and_exit_2(program: str, name: str) -> None:
    args = ["list"] if program == "client.py" else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TEMPORAL_"))}
    done = subprocess.run(
        [str(BIN / "python"), str(REPO / program), *args],
        env=env | {"OTEL_TRACES_EXPORTER": "jaeger", "TEMPORAL_ADDRESS": "127.0.0.1:1"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert done.stderr == (
        f"{name}: OTEL_TRACES_EXPORTER=jaeger: unknown exporter 'jaeger'"
        " (use otlp, console, none)\n"
    )
