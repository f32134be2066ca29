"""The one place that tells a one-region deployment from a multi-region one.

A deployment's workflow type decides the type of its status (the ``status`` query, the result,
the details of its failure); the status's type decides how it is shown. The rest of ``cli/``
works on either.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli import render, render_regions
from models.deployment import DeploymentRequest, DeploymentStatus
from models.errors import BlueGreenError
from models.multi_region import MultiRegionRequest, MultiRegionStatus

AnyStatus = DeploymentStatus | MultiRegionStatus
AnyRequest = DeploymentRequest | MultiRegionRequest
ONE_REGION = "BlueGreenDeployment"
MULTI_REGION = "MultiRegionDeployment"
STATUS_TYPES: dict[str, type[AnyStatus]] = {
    ONE_REGION: DeploymentStatus,
    MULTI_REGION: MultiRegionStatus,
}


def status_type(workflow_id: str, workflow_type: str | None) -> type[AnyStatus]:
    """The status type of a deployment workflow; an error for any other workflow."""
    if workflow_type not in STATUS_TYPES:
        raise BlueGreenError(f"{workflow_id} is not a deployment (workflow type {workflow_type})")
    return STATUS_TYPES[workflow_type]


@dataclass(frozen=True)
class Launch:
    """How ``client.py deploy`` starts a request."""

    workflow: str
    status_type: type[AnyStatus]
    where: str
    """The region, or how many regions in which waves."""
    memo: dict[str, Any]

    def summary(self, request: AnyRequest) -> str:
        """The workflow's static summary, as the Web UI lists it."""
        joiner = " in" if self.workflow == MULTI_REGION else ","
        return f"deploy {request.service} {request.version} to {request.environment}{joiner} {self.where}"


def launch(request: AnyRequest) -> Launch:
    """The workflow a request starts, with its summary and memo."""
    memo: dict[str, Any] = {
        "service": request.service,
        "environment": request.environment,
        "version": request.version,
        "requested_by": request.requested_by,
    }
    if isinstance(request, MultiRegionRequest):
        waves = [[target.region for target in wave] for wave in request.waves]
        where = render_regions.regions_phrase(waves)
        memo |= {"regions": request.regions(), "waves": waves}
        return Launch(MULTI_REGION, MultiRegionStatus, where, memo)
    memo["region"] = request.target.region
    return Launch(ONE_REGION, DeploymentStatus, request.target.region, memo)


# --- showing a status ----------------------------------------------------------------------------


def summary(status: AnyStatus) -> str:
    """The final (or current) state, for a terminal or a CI log."""
    if isinstance(status, MultiRegionStatus):
        return render_regions.summary(status)
    return render.summary(status)


def as_json(status: AnyStatus, **extra: Any) -> str:
    """One JSON document: the status and ``extra`` (run ID, exit code)."""
    if isinstance(status, MultiRegionStatus):
        return render_regions.as_json(status, **extra)
    return render.as_json(status, **extra)


def exit_code(status: AnyStatus) -> int:
    """client.py's exit code for a deployment that ended so (0 only if it succeeded everywhere)."""
    if isinstance(status, MultiRegionStatus):
        return render_regions.exit_code(status)
    return render.exit_code(status)


def where_it_is(status: AnyStatus) -> str:
    """Its phase, or each started region's phase."""
    if isinstance(status, MultiRegionStatus):
        phases = [f"{p.region} {p.status.phase.value}" for p in status.regions.values() if p.status]
        return f"phases {', '.join(phases)}" if phases else "starting"
    return f"phase {status.phase.value}"


def progress_printer(
    say: Callable[[str], None], since: AnyStatus | None = None
) -> Callable[[AnyStatus], None]:
    """A ``follow`` callback that says each phase entered (in each region) after ``since``."""
    shown = len(since.phases) if isinstance(since, DeploymentStatus) else 0
    regions_shown = (
        render_regions.phases_shown(since) if isinstance(since, MultiRegionStatus) else {}
    )

    def show_new_phases(status: AnyStatus) -> None:
        nonlocal shown
        if isinstance(status, MultiRegionStatus):
            lines = render_regions.new_phase_lines(status, regions_shown)
        else:
            lines = [render.phase_line(entry, status) for entry in status.phases[shown:]]
            shown = max(shown, len(status.phases))
        for line in lines:
            say(line)

    return show_new_phases


# --- approve and rollback -------------------------------------------------------------------------


def approved_line(status: AnyStatus) -> str:
    """What ``client.py approve`` prints once the deployment took the approval."""
    if isinstance(status, MultiRegionStatus):
        return render_regions.approved_line(status)
    return render.approved_line(status)


def rollback_accepted_line(status: AnyStatus) -> str:
    """What ``client.py rollback`` prints once the deployment took the request."""
    if isinstance(status, MultiRegionStatus):
        return render_regions.rollback_accepted_line(status)
    return render.rollback_accepted_line(status)


def rollback_exit_code(final: AnyStatus) -> int:
    """0 only when production is back as it was: rolled back, nothing left for a person."""
    if isinstance(final, MultiRegionStatus):
        return render_regions.rollback_exit_code(final)
    return render.rollback_exit_code(final)


def ended_advice(status: AnyStatus, action: str) -> str:
    """How an ended deployment ended, and what to do instead of ``action``."""
    if isinstance(status, MultiRegionStatus):
        return render_regions.ended_advice(status, action)
    return render.ended_advice(status, action)
