"""How a deployment's status is shown: lines for people, one JSON document for programs."""

import json
from datetime import datetime
from typing import Any

from models.deployment import DeploymentStatus, Phase, PhaseEntry, State

EXIT_CODES = {State.SUCCEEDED: 0, State.FAILED: 1, State.ROLLED_BACK: 1}
"""client.py's exit codes by final state (2: bad input, 3: Temporal unreachable, 4: refused
because the state of the deployment does not allow it; ``rollback`` exits 0 when rolled back)."""


def exit_code(status: DeploymentStatus) -> int:
    """0 succeeded; 1 failed, rolled back, or (only while following) still running."""
    return EXIT_CODES.get(status.state, 1)


def phase_reached(status: DeploymentStatus) -> Phase:
    """The furthest step of the sequence: where it failed, or the last one before the end."""
    if status.report:
        return status.report.phase
    steps = [e.phase for e in status.phases if e.phase not in (Phase.COMPENSATING, Phase.DONE)]
    return steps[-1] if steps else status.phase


def phase_line(entry: PhaseEntry, status: DeploymentStatus) -> str:
    """One line per phase entered, as ``--wait`` prints them."""
    when = entry.entered_at.strftime("%H:%M:%S")
    text = {
        Phase.SETTING_UP: "reading SSM and the router",
        Phase.DEPLOYING: f"{status.version} to {status.target_color or 'the inactive color'}",
        Phase.WAITING_FOR_HEALTH: f"waiting until {status.target_color} is healthy",
        Phase.TESTING: f"integration checks against {status.target_color}",
        Phase.AWAITING_APPROVAL: f"waiting for approval: client.py approve {status.deployment_id}",
        Phase.SWITCHING: f"traffic {status.active_color_before} → {status.target_color}",
        Phase.BAKING: f"both colors running, traffic on {status.target_color}",
        Phase.DRAINING: f"waiting for {status.active_color_before}'s clients to leave",
        Phase.CLEANING_UP: f"scaling {status.active_color_before} to 0",
        Phase.COMPENSATING: "restoring production",
        Phase.DONE: status.state.value,
    }.get(entry.phase, "")
    return f"{when} {entry.phase.value:<20} {text}".rstrip()


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
        for color in ("blue", "green"):
            lines.append(
                f"  {color:<5} version: {status.versions_before.get(color) or '-'} →"
                f" {status.versions_after.get(color) or '-'}"
            )
    lines.append(f"  phase reached: {phase_reached(status).value}")
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
            f"  rollback requested by {record.by} at {_at(record.at)} in {(record.phase or status.phase).value}:"
            f" {record.reason}"
        )
    lines.extend(f"  warning: {warning}" for warning in status.warnings)
    if status.report:
        verb = "rolled back" if status.state == State.ROLLED_BACK else "failed"
        lines.append(f"  {verb} in {status.report.phase.value}: {status.report.reason}")
        lines.extend(f"  restored: {step}" for step in status.report.compensation)
        lines.extend(
            f"  NOT RESTORED, needs a person: {step}" for step in status.report.compensation_errors
        )
    return "\n".join(lines)


def _approval_lines(status: DeploymentStatus) -> list[str]:
    if status.approval:
        approval = status.approval
        comment = f": {approval.comment}" if approval.comment else ""
        return [f"  approved by {approval.by} at {_at(approval.at)}{comment}"]
    waiting = status.state == State.RUNNING and status.phase == Phase.AWAITING_APPROVAL
    if waiting and status.awaiting_approval_since:
        until = status.awaiting_approval_until
        return [
            f"  waiting for approval since {_at(status.awaiting_approval_since)}"
            + (f", until {_at(until)}" if until else "")
            + f": client.py approve {status.deployment_id}"
        ]
    if status.require_approval:
        return ["  approval: required, not given"]
    return []


def _bake_lines(status: DeploymentStatus) -> list[str]:
    lines = []
    if status.bake_until:
        baking = status.state == State.RUNNING and status.phase == Phase.BAKING
        lines.append(f"  {'baking' if baking else 'bake'} until {_at(status.bake_until)}")
    if status.last_alarms:
        alarms = ", ".join(f"{a.name} {a.state}" for a in status.last_alarms)
        lines.append(f"  alarms: {alarms} ({status.alarm_checks} checks)")
        lines.extend(
            f"  alarm {a.name}: {a.reason}" for a in status.last_alarms if a.state == "ALARM"
        )
    return lines


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def as_json(status: DeploymentStatus, **extra: Any) -> str:
    """One JSON document: the status, the phase reached and ``extra`` (run ID, exit code)."""
    document = {**extra, "phase_reached": phase_reached(status).value}
    document.update(status.model_dump(mode="json"))
    return json.dumps(document, indent=2)
