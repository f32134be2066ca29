"""The Markdown the Web UI shows as a deployment's current details."""

from datetime import datetime

from models.deployment import DeploymentStatus, Phase, State
from models.durations import format_duration
from workflows.long_wait import checks
from workflows.waits import watching


def describe(status: DeploymentStatus, now: datetime) -> str:
    """Phase, colors and versions, and the latest observation of the wait in progress.

    The details change only when the workflow records something (a phase, a check, a message),
    so they say when the phase began rather than how long ago, which would be stale at once.
    """
    lines = [
        f"**{status.service} {status.version} → {status.environment} ({status.region})**",
        "",  # the Web UI renders the lines as a list only after a blank line
        f"- state: {status.state.value}, phase: **{status.phase.value}** {_when(status, now)}",
    ]
    if status.active_color_before and status.target_color:
        old, new = status.active_color_before, status.target_color
        lines.append(
            f"- colors: {old} ({status.versions_before.get(old) or '?'}, active before) → "
            f"{new} ({status.versions_after.get(new) or '?'}); traffic on "
            f"{status.active_color_after}"
        )
    traffic = status.traffic_text()
    if traffic:
        lines.append(f"- traffic: **{traffic}**")
        if status.awaiting_step_approval and status.state == State.RUNNING:
            lines.append(
                f"- **waiting for approval** of this step (`client.py approve"
                f" {status.deployment_id}`); `client.py rollback` puts all traffic back"
            )
    lines += [
        f"- step {a.step} ({a.percent}%) approved by {a.by} at {a.at:%H:%M:%S} UTC"
        for a in status.step_approvals
    ]
    lines += [f"- analysis: {line}" for line in status.analysis_lines()]
    if status.last_health:
        lines.append(f"- health: {status.last_health.reason} ({checks(status.health_checks)})")
    if status.integration_results:
        results = status.integration_results
        passed = sum(1 for r in results if r.passed)
        failed = "".join(f"; {r.name} failed: {r.detail}" for r in results if not r.passed)
        lines.append(f"- integration checks: {passed} of {len(results)} passed{failed}")
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
        lines.append(f"- alarms: {alarms} ({checks(status.alarm_checks)})")
    watch = watching(status)
    if watch:
        lines.append(f"- the checks go on in `{watch[1]}`: the latest result is there")
    if status.last_connections:
        seen = status.last_connections
        left = seen.count if seen.count is not None else f"unknown ({seen.error})"
        on = status.active_color_before or "the old color"
        lines.append(f"- connections left on {on}: {left} ({checks(status.connection_checks)})")
    if status.rollback:
        phase = (status.rollback.phase or status.phase).value
        lines.append(
            f"- rollback requested by {status.rollback.by} in {phase}: {status.rollback.reason}"
        )
    if status.report:
        report = status.report
        ended = "rolled back" if status.state == State.ROLLED_BACK else "failed"
        lines.append(f"- {ended} in {report.phase.value}: {report.reason}")
        lines += [f"- restored: {step}" for step in report.compensation]
        lines += [f"- **not restored, needs a person**: {e}" for e in report.compensation_errors]
    lines += [f"- warning: {warning}" for warning in status.warnings]
    return "\n".join(lines)


def _when(status: DeploymentStatus, now: datetime) -> str:
    """Since when the deployment is in its phase; once done, how long it took in all."""
    if not status.phases:
        return ""
    if status.phase == Phase.DONE:
        return f"after {format_duration(now - status.phases[0].entered_at)}"
    return f"since {status.phases[-1].entered_at:%H:%M:%S} UTC"
