"""How a one-region deployment's status is shown: lines for people, one JSON document for programs."""

import json
from datetime import datetime
from typing import Any

from models.colors import COLORS, Color
from models.deployment import DeploymentStatus, Phase, PhaseEntry, State

EXIT_CODES = {State.SUCCEEDED: 0, State.FAILED: 1, State.ROLLED_BACK: 1}
"""client.py's exit codes by final state (2: bad input, 3: Temporal unreachable, 4: refused
because the state of the deployment does not allow it; ``rollback`` exits 0 when rolled back)."""


def exit_code(status: DeploymentStatus) -> int:
    """0 succeeded; 1 failed, rolled back, or (only while following) still running."""
    return EXIT_CODES.get(status.state, 1)


def rollback_exit_code(final: DeploymentStatus) -> int:
    """0 only when production is back as it was: rolled back, nothing left for a person."""
    return 0 if final.state == State.ROLLED_BACK and not unrestored(final) else 1


def unrestored(status: DeploymentStatus) -> list[str]:
    """The restoring steps that failed: what needs a person."""
    return status.report.compensation_errors if status.report else []


def phase_reached(status: DeploymentStatus) -> Phase:
    """The furthest step of the sequence: where it failed, or the last one before the end."""
    if status.report:
        return status.report.phase
    steps = [e.phase for e in status.phases if e.phase not in (Phase.COMPENSATING, Phase.DONE)]
    return steps[-1] if steps else status.phase


def phase_line(entry: PhaseEntry, status: DeploymentStatus) -> str:
    """One line per phase entered, as ``--wait`` prints them."""
    when = entry.entered_at.strftime("%H:%M:%S")
    return f"{when} {entry.phase.value:<20} {phase_text(entry, status)}".rstrip()


def phase_text(entry: PhaseEntry, status: DeploymentStatus, approve_id: str | None = None) -> str:
    """What a phase entered means for this deployment; ``approve_id``: where approvals go."""
    if entry.phase == Phase.AWAITING_APPROVAL and not status.require_approval:
        return "waiting until every region of its wave is ready to switch"
    return {
        Phase.SETTING_UP: "reading SSM and the router",
        Phase.DEPLOYING: f"{status.version} to {status.target_color or 'the inactive color'}",
        Phase.WAITING_FOR_HEALTH: f"waiting until {status.target_color} is healthy",
        Phase.TESTING: f"integration checks against {status.target_color}",
        Phase.AWAITING_APPROVAL: (
            f"waiting for approval: client.py approve {approve_id or status.deployment_id}"
        ),
        Phase.SWITCHING: f"traffic {status.active_color_before} → {status.target_color}",
        Phase.BAKING: f"both colors running, traffic on {status.target_color}",
        Phase.DRAINING: f"waiting for {status.active_color_before}'s clients to leave",
        Phase.CLEANING_UP: f"scaling {status.active_color_before} to 0",
        Phase.COMPENSATING: "restoring production",
        Phase.DONE: status.state.value,
    }.get(entry.phase, "")


def summary(status: DeploymentStatus) -> str:
    """The final (or current) state of a deployment, for a terminal or a CI log."""
    lines = [
        f"deployment {status.deployment_id}: {status.state.value.upper()}",
        f"  {status.service} {status.version} ({status.image}) → {status.environment},"
        f" {status.region}",
    ]
    if status.active_color_before:
        before, after = status.active_color_before, status.active_color_after
        lines.append(f"  active color: {before} → {after}")
        for color in COLORS:
            lines.append(f"  {color:<5} version: {version_change(status, color)}")
    lines.append(f"  phase reached: {phase_reached(status).value}")
    lines.extend(_traffic_lines(status))
    if status.last_health:
        lines.append(f"  last health check: {status.last_health.reason}")
    if status.last_connections:
        seen = status.last_connections
        lines.append(
            f"  clients left on the old color: {seen.count if seen.count is not None else seen.error}"
        )
    for result in status.integration_results:
        mark = "passed" if result.passed else "FAILED"
        lines.append(f"  check {result.name}: {mark} ({result.detail})")
    lines.extend(_approval_lines(status))
    lines.extend(_bake_lines(status))
    if status.rollback:
        record = status.rollback
        lines.append(
            f"  rollback requested by {record.by} at {at(record.at)} in {(record.phase or status.phase).value}:"
            f" {record.reason}"
        )
    lines.extend(f"  warning: {warning}" for warning in status.warnings)
    lines.extend(report_lines(status, "  "))
    return "\n".join(lines)


def version_change(status: DeploymentStatus, color: Color) -> str:
    """A color's version before → after, ``-`` for none."""
    before, after = status.versions_before.get(color), status.versions_after.get(color)
    return f"{before or '-'} → {after or '-'}"


def report_lines(status: DeploymentStatus, indent: str) -> list[str]:
    """Why it did not succeed, what was restored, and what needs a person."""
    if not status.report:
        return []
    verb = "rolled back" if status.state == State.ROLLED_BACK else "failed"
    lines = [f"{indent}{verb} in {status.report.phase.value}: {status.report.reason}"]
    lines.extend(f"{indent}restored: {step}" for step in status.report.compensation)
    lines.extend(f"{indent}NOT RESTORED, needs a person: {step}" for step in unrestored(status))
    return lines


def _approval_lines(status: DeploymentStatus) -> list[str]:
    if status.approval:
        approval = status.approval
        comment = f": {approval.comment}" if approval.comment else ""
        return [f"  approved by {approval.by} at {at(approval.at)}{comment}"]
    waiting = status.state == State.RUNNING and status.phase == Phase.AWAITING_APPROVAL
    if waiting and status.awaiting_approval_since:
        until = status.awaiting_approval_until
        return [
            f"  waiting for approval since {at(status.awaiting_approval_since)}"
            + (f", until {at(until)}" if until else "")
            + f": client.py approve {status.deployment_id}"
        ]
    if status.require_approval:
        return ["  approval: required, not given"]
    return []


def _traffic_lines(status: DeploymentStatus) -> list[str]:
    traffic = status.traffic_text()
    if traffic is None:
        return []
    lines = [f"  traffic: {traffic}"]
    lines += [f"  analysis: {line}" for line in status.analysis_lines()]
    if status.awaiting_step_approval and status.state == State.RUNNING:
        lines.append(f"  this step waits for approval: client.py approve {status.deployment_id}")
    lines.extend(
        f"  step {a.step} ({a.percent}%) approved by {a.by} at {at(a.at)}"
        for a in status.step_approvals
    )
    return lines


def _bake_lines(status: DeploymentStatus) -> list[str]:
    lines = []
    if status.bake_until:
        baking = status.state == State.RUNNING and status.phase == Phase.BAKING
        lines.append(f"  {'baking' if baking else 'bake'} until {at(status.bake_until)}")
    if status.last_alarms:
        alarms = ", ".join(f"{a.name} {a.state}" for a in status.last_alarms)
        lines.append(f"  alarms: {alarms} ({status.alarm_checks} checks)")
        lines.extend(
            f"  alarm {a.name}: {a.reason}" for a in status.last_alarms if a.state == "ALARM"
        )
    return lines


def table(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns; the first row is the header."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def at(moment: datetime) -> str:
    """A moment as the lines show it, in UTC."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def as_json(status: DeploymentStatus, **extra: Any) -> str:
    """One JSON document: the status, the phase reached and ``extra`` (run ID, exit code)."""
    return json.dumps(as_document(status, **extra), indent=2)


def as_document(status: DeploymentStatus, **extra: Any) -> dict[str, Any]:
    """The JSON document of ``as_json`` as a dict."""
    document = {**extra, "phase_reached": phase_reached(status).value}
    document.update(status.model_dump(mode="json"))
    return document


# --- approve and rollback ---------------------------------------------------------------------


def approved_line(status: DeploymentStatus) -> str:
    """What ``client.py approve`` prints once the deployment took the approval."""
    step = status.step_approvals[-1] if status.step_approvals else None
    if step and (status.approval is None or step.at >= status.approval.at):
        return (
            f"approved {status.deployment_id} as {step.by}: {status.target_color} goes on from"
            f" step {step.step} ({step.percent}%)"
        )
    by = status.approval.by if status.approval else "?"
    return (
        f"approved {status.deployment_id} as {by}: switching"
        f" {status.active_color_before} → {status.target_color}"
    )


def rollback_accepted_line(status: DeploymentStatus) -> str:
    """What ``client.py rollback`` prints once the deployment took the request."""
    record = status.rollback
    phase = (record.phase if record and record.phase else status.phase).value
    by = f" from {record.by}" if record else ""
    return f"rollback of {status.deployment_id}{by} accepted in {phase}: putting production back"


def ended_advice(status: DeploymentStatus, action: str) -> str:
    """How an ended deployment ended, and what to do instead of ``action``."""
    ended = f"{status.deployment_id} already ended ({status.state.value})"
    if action == "approve":
        return f"{ended}; nothing waits for approval"
    if status.state != State.SUCCEEDED:
        return f"{ended}; see client.py status {status.deployment_id} for what was restored"
    old = status.active_color_before
    if old is None or status.active_color_after == old:
        return f"{ended} without switching traffic: production is still on {old}"
    previous = status.versions_before.get(old)
    if not status.shutdown_inactive_cluster:
        return (
            f"{ended} and {old} still runs version {previous or '?'}; to send traffic back to it:"
            f" {switch_command(status)}"
        )
    again = f"version {previous}" if previous else "the previous version"
    return f"{ended}; to go back, deploy {again} again"


def switch_command(status: DeploymentStatus) -> str:
    """The ``client.py switch`` that sends this deployment's traffic back to the old color."""
    command = f"client.py switch --environment {status.environment}"
    one_region = status.deployment_id == f"deploy-{status.service}-{status.environment}"
    return command if one_region else f"{command} --region {status.region}"
