"""A deployment to one region: the BlueGreenDeployment workflow, shown by cli/render.py."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cli import render, status_block
from cli.deployment_kinds.kind import DeploymentKind, Say
from models.deployment import DeploymentRequest, DeploymentStatus


class OneRegion(DeploymentKind[DeploymentRequest, DeploymentStatus]):
    """A deployment to one region."""

    workflow = "BlueGreenDeployment"
    renders = render
    status_type = DeploymentStatus

    def regions(self, request: DeploymentRequest) -> list[str]:
        return [request.target.region]

    def where(self, request: DeploymentRequest) -> str:
        return request.target.region

    def static_summary(self, request: DeploymentRequest) -> str:
        return f"deploy {request.service} {request.version} to {request.environment}, {self.where(request)}"

    def placement_details(self, request: DeploymentRequest) -> list[str]:
        return []

    def placement_memo(self, request: DeploymentRequest) -> dict[str, Any]:
        return {"region": request.target.region}

    def progress_printer(
        self, say: Say, since: DeploymentStatus | None = None
    ) -> Callable[[DeploymentStatus], None]:
        shown = len(since.phases) if since else 0

        def show_new_phases(status: DeploymentStatus) -> None:
            nonlocal shown
            lines = [render.phase_line(entry, status) for entry in status.phases[shown:]]
            shown = max(shown, len(status.phases))
            for line in lines:
                say(line)

        return show_new_phases

    def status_block(self, status: DeploymentStatus, now: datetime) -> list[str]:
        return status_block.one_region(status, now)

    def where_it_is(self, status: DeploymentStatus) -> str:
        return f"phase {status.phase.value}"


ONE_REGION = OneRegion()
