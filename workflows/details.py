"""The Markdown the Web UI shows as a deployment's current details."""

from datetime import datetime

from models.deployment import DeploymentStatus
from models.durations import format_duration


def describe(status: DeploymentStatus, now: datetime) -> str:
    """Phase, colors and versions, and the latest observation of the wait in progress."""
    since = status.phases[-1].entered_at if status.phases else now
    lines = [
        f"**{status.service} {status.version} → {status.environment} ({status.region})**",
        f"- state: {status.state.value}, phase: **{status.phase.value}**"
        f" for {format_duration(now - since)}",
    ]
    if status.active_color_before and status.target_color:
        old, new = status.active_color_before, status.target_color
        lines.append(
            f"- colors: {old} ({status.versions_before.get(old) or '?'}, active before) → "
            f"{new} ({status.versions_after.get(new) or '?'}); traffic on "
            f"{status.active_color_after}"
        )
    if status.last_health:
        lines.append(f"- health: {status.last_health.reason} ({status.health_checks} checks)")
    if status.last_connections:
        seen = status.last_connections
        left = seen.count if seen.count is not None else f"unknown ({seen.error})"
        lines.append(f"- connections left: {left} ({status.connection_checks} checks)")
    if status.report:
        lines.append(f"- failed in {status.report.phase.value}: {status.report.reason}")
    return "\n".join(lines)
