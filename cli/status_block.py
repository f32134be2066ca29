"""The live view's block: the lines under the phase lines that say where a running deployment
is now (cli/live.py redraws them in place); each kind of deployment shows its own."""

from datetime import datetime

from cli import render
from models.deployment import DeploymentStatus, Phase, State
from models.multi_region import MultiRegionStatus, RegionProgress
from workflows.long_wait import checks


def one_region(status: DeploymentStatus, now: datetime) -> list[str]:
    """Where a running one-region deployment is: phase and time in it, health, clients, alarms."""
    lines = [f"  now: {status.phase.value} for {time_in_phase(status, now)}"]
    traffic = status.traffic_text()
    if traffic and status.phase == Phase.SWITCHING:
        lines.append(f"  traffic: {traffic}")
    if status.state == State.RUNNING:
        lines += [f"  analysis: {line}" for line in status.analysis_lines()]
    if status.last_health:
        lines.append(f"  health: {_health(status)}")
    if status.last_connections:
        lines.append(f"  clients left on {status.active_color_before}: {_clients(status)}")
    if status.last_alarms:
        alarms = ", ".join(f"{alarm.name} {alarm.state}" for alarm in status.last_alarms)
        until = f", bake until {status.bake_until:%H:%M:%S}" if status.bake_until else ""
        lines.append(f"  alarms: {alarms} ({checks(status.alarm_checks)}){until}")
    return lines


def several_regions(status: MultiRegionStatus, now: datetime) -> list[str]:
    """Where each region of a running multi-region deployment is: a table, a row per region."""
    rows = [["REGION", "PHASE", "FOR", "TRAFFIC", "HEALTH", "CLIENTS LEFT"]]
    rows += [_region_row(progress, now) for progress in status.regions.values()]
    return [f"  {line}" for line in render.table(rows)]


def _region_row(progress: RegionProgress, now: datetime) -> list[str]:
    status = progress.status
    if status is None:
        waiting = "not started" if progress.ended else f"not started (wave {progress.wave + 1})"
        return [progress.region, waiting, "-", "-", "-", "-"]
    running = status.state == State.RUNNING
    return [
        progress.region,
        status.phase.value if running else status.state.value,
        time_in_phase(status, now) if running else "-",
        status.traffic_text() or "-",
        _health(status) if status.last_health else "-",
        _clients(status) if status.last_connections else "-",
    ]


def _health(status: DeploymentStatus) -> str:
    assert status.last_health is not None
    return f"{status.last_health.reason} ({checks(status.health_checks)})"


def _clients(status: DeploymentStatus) -> str:
    seen = status.last_connections
    assert seen is not None
    count = str(seen.count) if seen.count is not None else f"unknown: {seen.error}"
    return f"{count} ({checks(status.connection_checks)})"


def time_in_phase(status: DeploymentStatus, now: datetime) -> str:
    """How long the deployment has been in its current phase: ``12s``, ``3m05s``, ``1h02m``."""
    entered = [entry.entered_at for entry in status.phases if entry.phase == status.phase]
    if not entered:
        return "-"
    return duration((now - entered[-1]).total_seconds())


def duration(seconds: float) -> str:
    """``seconds`` as the live view shows them (never negative: the clocks may differ a bit)."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
