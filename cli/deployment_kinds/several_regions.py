"""A deployment to several regions, wave by wave: the MultiRegionDeployment workflow, shown by
cli/render_regions.py."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cli import render_regions, status_block
from cli.deployment_kinds.kind import DeploymentKind, Say
from models.multi_region import MultiRegionRequest, MultiRegionStatus


class SeveralRegions(DeploymentKind[MultiRegionRequest, MultiRegionStatus]):
    """A deployment to several regions: one child deployment per region."""

    workflow = "MultiRegionDeployment"
    renders = render_regions
    status_type = MultiRegionStatus

    def regions(self, request: MultiRegionRequest) -> list[str]:
        return request.regions()

    def where(self, request: MultiRegionRequest) -> str:
        return render_regions.regions_phrase(_waves(request))

    def static_summary(self, request: MultiRegionRequest) -> str:
        return f"deploy {request.service} {request.version} to {request.environment} in {self.where(request)}"

    def placement_details(self, request: MultiRegionRequest) -> list[str]:
        waves = " | ".join(", ".join(wave) for wave in _waves(request))
        lines = [f"- regions, wave by wave: {waves}"]
        if request.switch_together:
            lines.append("- the regions of a wave switch together")
        lines.append(
            "- a region that fails rolls the others back"
            if request.fail_fast
            else "- a region that fails leaves the others going"
        )
        return lines

    def placement_memo(self, request: MultiRegionRequest) -> dict[str, Any]:
        return {"regions": request.regions(), "waves": _waves(request)}

    def progress_printer(
        self, say: Say, since: MultiRegionStatus | None = None
    ) -> Callable[[MultiRegionStatus], None]:
        shown = render_regions.phases_shown(since) if since else {}

        def show_new_phases(status: MultiRegionStatus) -> None:
            for line in render_regions.new_phase_lines(status, shown):
                say(line)

        return show_new_phases

    def status_block(self, status: MultiRegionStatus, now: datetime) -> list[str]:
        return status_block.several_regions(status, now)

    def where_it_is(self, status: MultiRegionStatus) -> str:
        phases = [f"{p.region} {p.status.phase.value}" for p in status.regions.values() if p.status]
        return f"phases {', '.join(phases)}" if phases else "starting"


def _waves(request: MultiRegionRequest) -> list[list[str]]:
    return [[target.region for target in wave] for wave in request.waves]


SEVERAL_REGIONS = SeveralRegions()
