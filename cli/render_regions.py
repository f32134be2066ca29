"""How a multi-region deployment is shown: a line per region phase, a table, one JSON document."""

import json
from typing import Any

from cli import render
from models.deployment import DeploymentStatus, Phase, PhaseEntry, State
from models.multi_region import MultiRegionStatus, RegionProgress

_BEFORE_SWITCH = (
    Phase.SETTING_UP,
    Phase.DEPLOYING,
    Phase.WAITING_FOR_HEALTH,
    Phase.TESTING,
    Phase.AWAITING_APPROVAL,
)
_RESTORING = (Phase.COMPENSATING, Phase.DONE)
_COLUMNS = ["REGION", "WAVE", "STATE", "PHASE REACHED", "COLORS", "BLUE VERSION", "GREEN VERSION"]


def regions_phrase(waves: list[list[str]]) -> str:
    """How many regions, in which waves: ``3 regions (us-west-2; then us-east-1, eu-west-1)``."""
    count = sum(len(wave) for wave in waves)
    ordered = "; then ".join(", ".join(wave) for wave in waves)
    return f"{count} region{'' if count == 1 else 's'} ({ordered})"


def exit_code(status: MultiRegionStatus) -> int:
    """0 only when every region succeeded; 1 otherwise (or, while following, still running)."""
    everywhere = all(p.state() == State.SUCCEEDED for p in status.regions.values())
    return 0 if status.state == State.SUCCEEDED and everywhere else 1


def rollback_exit_code(final: MultiRegionStatus) -> int:
    """0 only when the deployment rolled back and no region left anything for a person."""
    left = [step for status in _region_statuses(final) for step in render.unrestored(status)]
    return 0 if final.state == State.ROLLED_BACK and not left else 1


# --- following ---------------------------------------------------------------------------------


def new_phase_lines(status: MultiRegionStatus, shown: dict[str, int]) -> list[str]:
    """A line per region phase entered that ``shown`` (region → phases shown) has not seen yet.

    ``shown`` is updated. The lines come in the order the phases were entered, across regions.
    """
    width = max(len(region) for region in status.regions)
    entered: list[tuple[str, PhaseEntry, DeploymentStatus]] = []
    for region, progress in status.regions.items():
        if progress.status is None:
            continue
        phases = progress.status.phases
        entered += [(region, e, progress.status) for e in phases[shown.get(region, 0) :]]
        shown[region] = max(shown.get(region, 0), len(phases))
    entered.sort(key=lambda item: item[1].entered_at)
    return [
        f"{entry.entered_at:%H:%M:%S} {region:<{width}}  {entry.phase.value:<20}"
        f" {render.phase_text(entry, region_status, approve_id=status.deployment_id)}".rstrip()
        for region, entry, region_status in entered
    ]


def phases_shown(status: MultiRegionStatus) -> dict[str, int]:
    """Region → phases ``status`` had shown before anything was restored: where
    ``new_phase_lines`` starts after a rollback was accepted (a region may have begun restoring
    already by the time the parent answered)."""
    shown = {}
    for region, progress in status.regions.items():
        phases = progress.status.phases if progress.status else []
        restoring = [i for i, e in enumerate(phases) if e.phase in _RESTORING]
        shown[region] = len(phases) if progress.ended or not restoring else restoring[0]
    return shown


# --- the table ---------------------------------------------------------------------------------


def summary(status: MultiRegionStatus) -> str:
    """The deployment, a row per region, then why regions did not succeed and what was restored."""
    lines = [
        f"deployment {status.deployment_id}: {status.state.value.upper()}",
        f"  {status.service} {status.version} ({status.image}) → {status.environment},"
        f" {regions_phrase(status.waves)}",
    ]
    rows = [_COLUMNS] + [_row(progress) for progress in status.regions.values()]
    lines += [f"  {line}" for line in render.table(rows)]
    for region, region_status in _statuses_by_region(status).items():
        report = render.report_lines(region_status, "")
        lines += [f"  {region}: {line}" for line in report[:1]]
        lines += [f"    {line}" for line in report[1:]]
        lines += [f"  {region}: warning: {warning}" for warning in region_status.warnings]
    lines += _message_lines(status)
    lines += [f"  warning: {warning}" for warning in status.warnings]
    if status.reason and status.state != State.SUCCEEDED:
        lines.append(f"  reason: {status.reason}")
    return "\n".join(lines)


def _row(progress: RegionProgress) -> list[str]:
    wave = str(progress.wave + 1)
    status = progress.status
    if status is None:
        return [progress.region, wave, "not started", "-", "-", "-", "-"]
    before, after = status.active_color_before, status.active_color_after
    return [
        progress.region,
        wave,
        status.state.value,
        render.phase_reached(status).value,
        f"{before} → {after or before}" if before else "-",
        render.version_change(status, "blue"),
        render.version_change(status, "green"),
    ]


def _message_lines(status: MultiRegionStatus) -> list[str]:
    lines = []
    if status.approval:
        comment = f": {status.approval.comment}" if status.approval.comment else ""
        lines.append(
            f"  approved by {status.approval.by} at {render.at(status.approval.at)}{comment}"
        )
    elif status.require_approval:
        ready = [p.region for p in status.regions.values() if p.at_gate()]
        if status.state == State.RUNNING and ready:
            lines.append(
                f"  waiting for approval ({', '.join(ready)} ready):"
                f" client.py approve {status.deployment_id}"
            )
        else:
            lines.append("  approval: required, not given")
    if status.rollback:
        record = status.rollback
        lines.append(
            f"  rollback requested by {record.by} at {render.at(record.at)}: {record.reason}"
        )
    return lines


def as_json(status: MultiRegionStatus, **extra: Any) -> str:
    """One JSON document: ``extra`` (run ID, exit code), the parent's status, and per region its
    state, phase reached and full status."""
    document = {**extra, **status.model_dump(mode="json")}
    for region, progress in status.regions.items():
        state = progress.state()
        document["regions"][region]["state"] = state.value if state else "not started"
        document["regions"][region]["phase_reached"] = (
            render.phase_reached(progress.status).value if progress.status else None
        )
    return json.dumps(document, indent=2)


# --- approve and rollback ---------------------------------------------------------------------


def approved_line(status: MultiRegionStatus) -> str:
    """Which regions the approval released now, and which it will release once they are ready."""
    step = status.step_approvals[-1] if status.step_approvals else None
    if step and (status.approval is None or step.at >= status.approval.at):
        return f"approved {status.deployment_id} as {step.by}: the {step.comment} goes on"
    by = status.approval.by if status.approval else "?"
    released = [p.region for p in status.regions.values() if p.released]
    later = [p.region for p in status.regions.values() if not p.released and _before_gate(p)]
    said = f"{', '.join(released)} switching" if released else "no region switching yet"
    if later:
        said += f"; {', '.join(later)} will switch when ready"
    return f"approved {status.deployment_id} as {by}: {said}"


def _before_gate(progress: RegionProgress) -> bool:
    """The region has not reached the approval gate yet, and will (nobody approved it directly)."""
    status = progress.status
    if status is None:
        return not progress.ended
    return (
        status.state == State.RUNNING
        and status.approval is None
        and status.rollback is None
        and status.phase in _BEFORE_SWITCH
    )


def rollback_accepted_line(status: MultiRegionStatus) -> str:
    """Which regions are being put back (and from which phase), and which will not start."""
    by = f" from {status.rollback.by}" if status.rollback else ""
    running = [
        f"{p.region} ({_phase_when_asked(p.status).value})"
        for p in status.regions.values()
        if p.started and not p.ended and p.status
    ]
    line = f"rollback of {status.deployment_id}{by} accepted: putting production back"
    line += f" in {', '.join(running)}" if running else " in every running region"
    unstarted = [p.region for p in status.regions.values() if not p.started]
    if unstarted:
        line += f"; {', '.join(unstarted)} will not start"
    return line


def _phase_when_asked(status: DeploymentStatus) -> Phase:
    """The phase the region was in when the rollback reached it (it may be restoring already)."""
    record = status.rollback
    return record.phase if record and record.phase else status.phase


def ended_advice(status: MultiRegionStatus, action: str) -> str:
    """How an ended multi-region deployment ended, and what to do instead of ``action``."""
    ended = f"{status.deployment_id} already ended ({status.state.value})"
    if action == "approve":
        return f"{ended}; nothing waits for approval"
    if status.state != State.SUCCEEDED:
        return f"{ended}; see client.py status {status.deployment_id} for what was restored"
    switched = [
        s
        for s in _region_statuses(status)
        if s.active_color_before and s.active_color_after != s.active_color_before
    ]
    if not switched:
        return f"{ended} without switching traffic: production is as it was"
    if not switched[0].shutdown_inactive_cluster:
        regions = ", ".join(s.region for s in switched)
        return (
            f"{ended} and the old colors still run; to send traffic back, for each region of"
            f" {regions}: client.py switch --environment {status.environment} --region REGION"
        )
    previous = {
        s.versions_before.get(s.active_color_before) for s in switched if s.active_color_before
    }
    only = next(iter(previous)) if len(previous) == 1 else None
    again = f"version {only}" if only else "the previous version"
    return f"{ended}; to go back, deploy {again} again"


def _statuses_by_region(status: MultiRegionStatus) -> dict[str, DeploymentStatus]:
    return {r: p.status for r, p in status.regions.items() if p.status is not None}


def _region_statuses(status: MultiRegionStatus) -> list[DeploymentStatus]:
    return list(_statuses_by_region(status).values())
