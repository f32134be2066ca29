"""What every kind of deployment does for ``client.py``: start its workflow, follow it, show it."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry.trace import Tracer
from temporalio.client import Client

from cli import deployments, root_span, starting
from cli.deployments import AnyHandle
from models.deployment import DeploymentRequest, DeploymentStatus
from models.multi_region import MultiRegionRequest, MultiRegionStatus

RequestT = TypeVar("RequestT", bound=DeploymentRequest | MultiRegionRequest)
StatusT = TypeVar("StatusT", bound=DeploymentStatus | MultiRegionStatus)
ShownT = TypeVar("ShownT", contravariant=True)
Say = Callable[[str], None]


class DeploymentKind(ABC, Generic[RequestT, StatusT]):
    """One kind of deployment: the workflow its requests start and the status that workflow
    answers with, and how ``client.py`` starts, follows and shows it."""

    workflow: str
    """The workflow type its requests start."""
    status_type: type[StatusT]
    """The type of its ``status`` query, its result and the details of its failure."""
    renders: "Renders[StatusT]"
    """The module that renders that status: the summary, the JSON document, the exit codes."""

    # --- starting ---------------------------------------------------------------------------

    async def start(
        self,
        client: Client,
        request: RequestT,
        task_queue: str,
        span_tracer: Tracer | None = None,
    ) -> AnyHandle:
        """Start the workflow inside the trace's root span, ``client.py deploy``."""
        with root_span.deploy_span(request, self.regions(request), span_tracer) as span:
            handle = await starting.start(client, request, task_queue, self)
            span.set_attribute("bluegreen.run_id", handle.result_run_id or "")
            return handle

    @abstractmethod
    def regions(self, request: RequestT) -> list[str]:
        """The regions it deploys to."""

    @abstractmethod
    def where(self, request: RequestT) -> str:
        """The region, or how many regions in which waves."""

    @abstractmethod
    def static_summary(self, request: RequestT) -> str:
        """The workflow's static summary, as the Web UI lists it."""

    @abstractmethod
    def placement_details(self, request: RequestT) -> list[str]:
        """The lines of the Web UI's details only this kind has."""

    @abstractmethod
    def placement_memo(self, request: RequestT) -> dict[str, Any]:
        """Where it deploys, for the memo."""

    # --- following --------------------------------------------------------------------------

    async def follow(
        self, client: Client, handle: AnyHandle, on_status: Callable[[StatusT], None]
    ) -> StatusT:
        """Call ``on_status`` with each status seen until it ends; return the final one."""
        return await deployments.follow(client, handle, self.status_type, on_status)

    @abstractmethod
    def progress_printer(self, say: Say, since: StatusT | None = None) -> Callable[[StatusT], None]:
        """A ``follow`` callback that says each phase entered (in each region) after ``since``."""

    @abstractmethod
    def status_block(self, status: StatusT, now: datetime) -> list[str]:
        """Where it is now, while it runs: the live view's block."""

    @abstractmethod
    def where_it_is(self, status: StatusT) -> str:
        """Its phase, or each started region's phase."""

    # --- showing: delegated to the module that renders this kind's status ---------------------

    def summary(self, status: StatusT) -> str:
        """The final (or current) state, for a terminal or a CI log."""
        return self.renders.summary(status)

    def as_json(self, status: StatusT, **extra: Any) -> str:
        """One JSON document: the status and ``extra`` (run ID, exit code)."""
        return self.renders.as_json(status, **extra)

    def exit_code(self, status: StatusT) -> int:
        """client.py's exit code for a deployment that ended so (0 only if it succeeded)."""
        return self.renders.exit_code(status)

    def approved_line(self, status: StatusT) -> str:
        """What ``client.py approve`` prints once the deployment took the approval."""
        return self.renders.approved_line(status)

    def rollback_accepted_line(self, status: StatusT) -> str:
        """What ``client.py rollback`` prints once the deployment took the request."""
        return self.renders.rollback_accepted_line(status)

    def rollback_exit_code(self, final: StatusT) -> int:
        """0 only when production is back as it was: rolled back, nothing left for a person."""
        return self.renders.rollback_exit_code(final)

    def ended_advice(self, status: StatusT, action: str) -> str:
        """How an ended deployment ended, and what to do instead of ``action``."""
        return self.renders.ended_advice(status, action)


class Renders(Protocol[ShownT]):
    """A module that renders one kind's status (cli/render.py, cli/render_regions.py)."""

    def summary(self, status: ShownT, /) -> str: ...
    def as_json(self, status: ShownT, **extra: Any) -> str: ...
    def exit_code(self, status: ShownT, /) -> int: ...
    def approved_line(self, status: ShownT, /) -> str: ...
    def rollback_accepted_line(self, status: ShownT, /) -> str: ...
    def rollback_exit_code(self, final: ShownT, /) -> int: ...
    def ended_advice(self, status: ShownT, action: str, /) -> str: ...


AnyKind = DeploymentKind[Any, Any]
"""A kind chosen at run time (by the request, the workflow type or the status)."""
