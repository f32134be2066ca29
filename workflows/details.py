"""The Markdown the Web UI shows as a deployment's current details."""

from datetime import datetime

from models.deployment import DeploymentStatus, Phase
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
    if status.phase == Phase.AWAITING_APPROVAL and status.awaiting_approval_until:
        until = f"until {status.awaiting_approval_until:%Y-%m-%d %H:%M} UTC"
        if status.require_approval:
            lines.append(
                f"- **waiting for approval** {until} (`client.py approve {status.deployment_id}`)"
            )
        else:
            lines.append(f"- **waiting for the other regions** to be ready to switch, {until}")
    if status.approval:
        approval = status.approval
        comment = f": {approval.comment}" if approval.comment else ""
        lines.append(f"- approved by {approval.by} at {approval.at:%H:%M:%S} UTC{comment}")
    if status.phase == Phase.BAKING and status.bake_until:
        lines.append(f"- baking until {status.bake_until:%H:%M:%S} UTC, both colors running")
    if status.last_alarms:
        alarms = ", ".join(f"{a.name} {a.state}" for a in status.last_alarms)
        lines.append(f"- alarms: {alarms} ({status.alarm_checks} checks)")
    if status.rollback:
        lines.append(
            f"- rollback requested by {status.rollback.by} in {(status.rollback.phase or status.phase).value}:"
            f" {status.rollback.reason}"
        )
    if status.report:
        lines.append(f"- failed in {status.report.phase.value}: {status.report.reason}")
    return "\n".join(lines)
