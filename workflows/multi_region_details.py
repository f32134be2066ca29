"""How a multi-region deployment shows in the Web UI: its current details and its phase."""

from datetime import datetime

from models.deployment import DeploymentStatus, Phase, State
from models.multi_region import MultiRegionStatus, RegionProgress
from workflows.long_wait import checks

_ORDER = list(Phase)


def overall_phase(status: MultiRegionStatus) -> Phase:
    """The one phase that stands for the whole deployment (its ``BlueGreenPhase``).

    ``done`` once it has ended; ``awaiting_approval`` while a region waits for the approval it
    requires (there is something for a person to do); ``compensating`` while a region rolls
    back; otherwise the least advanced phase of the regions still running (``setting_up``
    before any has reported). So the queries that find one-region deployments by phase find
    multi-region ones as well.
    """
    if status.state != State.RUNNING:
        return Phase.DONE
    reported = [p.status for p in status.regions.values() if p.status is not None]
    running = [s for s in reported if s.phase != Phase.DONE] or reported
    if not running:
        return Phase.SETTING_UP
    phases = {s.phase for s in running}
    if status.require_approval and status.approval is None and Phase.AWAITING_APPROVAL in phases:
        return Phase.AWAITING_APPROVAL
    if Phase.COMPENSATING in phases:
        return Phase.COMPENSATING
    return min(phases, key=_ORDER.index)


def describe_regions(status: MultiRegionStatus, now: datetime) -> str:
    """The deployment, then a line per region: wave, phase and since when, colors, latest check.

    Lists rather than a table: the Web UI renders Markdown lists well, tables barely.
    """
    phase = overall_phase(status)
    lines = [
        f"**{status.service} {status.version} → {status.environment},"
        f" {len(status.regions)} regions in {len(status.waves)} wave(s)**",
        "",
        f"- state: {status.state.value}, phase: **{phase.value}**,"
        f" wave {status.current_wave + 1} of {len(status.waves)}",
    ]
    if status.approval:
        lines.append(f"- approved by {status.approval.by} at {status.approval.at:%H:%M:%S} UTC")
    elif status.require_approval and status.state == State.RUNNING:
        waiting = [
            p.region
            for p in status.regions.values()
            if p.status and p.status.phase == Phase.AWAITING_APPROVAL
        ]
        if waiting:
            lines.append(
                f"- **waiting for approval** ({', '.join(waiting)} ready to switch):"
                f" `client.py approve {status.deployment_id}`"
            )
        else:
            lines.append(f"- requires approval: `client.py approve {status.deployment_id}`")
    if status.rollback:
        lines.append(f"- rollback requested by {status.rollback.by}: {status.rollback.reason}")
    if status.reason:
        lines.append(f"- {status.reason}")
    lines += [f"- warning: {warning}" for warning in status.warnings]
    lines += ["", "**regions**", ""]
    lines += [_region_line(progress) for progress in status.regions.values()]
    return "\n".join(lines)


def _region_line(progress: RegionProgress) -> str:
    where = f"- **{progress.region}** (wave {progress.wave + 1})"
    status = progress.status
    if status is None:
        return f"{where}: not started"
    since = f" since {status.phases[-1].entered_at:%H:%M:%S} UTC" if status.phases else ""
    parts = [f"{where}: {status.phase.value}{since}, {status.state.value}"]
    if status.active_color_before:
        parts.append(f"traffic {status.active_color_before} → {status.active_color_after}")
    if status.versions_after:
        parts.append(
            "versions "
            + ", ".join(f"{c} {v or '-'}" for c, v in sorted(status.versions_after.items()))
        )
    latest = _latest(status)
    if latest:
        parts.append(latest)
    return "; ".join(parts)


def _latest(status: DeploymentStatus) -> str:
    """The region's latest observation in its phase: what it waits for."""
    phase = status.phase
    if phase == Phase.WAITING_FOR_HEALTH and status.last_health:
        return f"health: {status.last_health.reason} ({checks(status.health_checks)})"
    if phase == Phase.AWAITING_APPROVAL:
        return "released" if status.approval else "at the gate"
    if phase == Phase.SWITCHING and status.traffic_text():
        return f"traffic {status.traffic_text()}"
    if phase == Phase.BAKING and status.bake_until:
        alarms = ", ".join(f"{a.name} {a.state}" for a in status.last_alarms)
        return f"until {status.bake_until:%H:%M:%S}" + (f"; {alarms}" if alarms else "")
    if phase == Phase.DRAINING and status.last_connections:
        left = status.last_connections.count
        return f"{left if left is not None else '?'} connections left"
    if status.report:
        verb = "rolled back" if status.state == State.ROLLED_BACK else "failed"
        return f"{verb} in {status.report.phase.value}: {status.report.reason}"
    return ""
