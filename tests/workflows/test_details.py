"""The Markdown a deployment shows as its current details in the Web UI."""

from datetime import UTC, datetime, timedelta

from models.deployment import DeploymentStatus, Phase, PhaseEntry
from models.messages import Approval, RollbackRecord
from models.observations import AlarmState
from workflows.details import describe

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def status(phase: Phase, **fields: object) -> DeploymentStatus:
    return DeploymentStatus.model_validate(
        {
            "deployment_id": "deploy-game-prod",
            "service": "game",
            "environment": "prod",
            "region": "us-west-2",
            "version": "2",
            "image": "game:2",
            "phase": phase,
            "phases": [PhaseEntry(phase=phase, entered_at=NOW - timedelta(minutes=3))],
            **fields,
        }
    )


def test_a_deployment_waiting_for_approval_says_until_when_and_how_to_approve() -> None:
    text = describe(
        status(
            Phase.AWAITING_APPROVAL,
            require_approval=True,
            awaiting_approval_until=NOW + timedelta(hours=23),
        ),
        NOW,
    )
    assert "phase: **awaiting_approval** for 3m" in text
    assert "**waiting for approval** until 2026-11-24 11:00 UTC" in text
    assert "`client.py approve deploy-game-prod`" in text


def test_the_bake_shows_its_end_and_the_alarms_last_seen() -> None:
    alarms = [AlarmState(name="game-5xx", state="OK", reason="fine")]
    text = describe(
        status(
            Phase.BAKING,
            bake_until=NOW + timedelta(minutes=2),
            last_alarms=alarms,
            alarm_checks=12,
            approval=Approval(by="alice", comment="ship it", at=NOW - timedelta(minutes=5)),
        ),
        NOW,
    )
    assert "baking until 12:02:00 UTC, both colors running" in text
    assert "alarms: game-5xx OK (12 checks)" in text
    assert "approved by alice at 11:55:00 UTC: ship it" in text
    assert "waiting for approval" not in text


def test_a_requested_rollback_names_who_and_why() -> None:
    record = RollbackRecord(by="bob", reason="desyncs", at=NOW, phase=Phase.DRAINING)
    text = describe(status(Phase.COMPENSATING, rollback=record), NOW)
    assert "rollback requested by bob in draining: desyncs" in text


def test_a_region_waiting_to_switch_together_says_so() -> None:
    text = describe(
        status(
            Phase.AWAITING_APPROVAL,
            switch_together=True,
            awaiting_approval_until=NOW + timedelta(hours=1),
        ),
        NOW,
    )
    assert "**waiting for the other regions** to be ready to switch, until 2026-11-23 13:00" in text
    assert "client.py approve" not in text
