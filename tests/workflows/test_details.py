"""The Markdown a deployment shows as its current details in the Web UI."""

from datetime import UTC, datetime, timedelta

from cli.render import summary
from models.analysis import MetricResult, MetricTally
from models.deployment import DeploymentStatus, FailureReport, Phase, PhaseEntry, State
from models.messages import Approval, RollbackRecord
from models.observations import (
    AlarmState,
    CheckResult,
    ConnectionCount,
    HealthObservation,
    RouterWeights,
)
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
    assert "phase: **awaiting_approval** since 11:57:00 UTC" in text
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


def test_the_waits_show_their_latest_check() -> None:
    health = HealthObservation(
        healthy=False,
        reason="running 1 of 2",
        running_count=1,
        desired_count=2,
        pending_count=1,
        rollout_state="IN_PROGRESS",
        task_definition_arn="arn:td:2",
        checked_at=NOW,
    )
    left = ConnectionCount(version="1", count=3, checked_at=NOW)
    checks = [
        CheckResult(name="health", url="/h", passed=True, status=200, detail="ok", elapsed_ms=3),
        CheckResult(name="login", url="/l", passed=False, status=500, detail="500", elapsed_ms=9),
    ]
    text = describe(
        status(
            Phase.DRAINING,
            active_color_before="blue",
            target_color="green",
            active_color_after="green",
            versions_before={"blue": "1", "green": None},
            versions_after={"blue": "1", "green": "2"},
            last_health=health,
            health_checks=4,
            integration_results=checks,
            last_connections=left,
            connection_checks=7,
        ),
        NOW,
    )
    assert "- colors: blue (1, active before) → green (2); traffic on green" in text
    assert "- health: running 1 of 2 (4 checks)" in text
    assert "- integration checks: 1 of 2 passed; login failed: 500" in text
    assert "- connections left on blue: 3 (7 checks)" in text


def test_an_ended_deployment_says_how_long_it_took_what_was_restored_and_the_warnings() -> None:
    report = FailureReport(
        phase=Phase.SWITCHING,
        reason="send all traffic to green: denied",
        compensation=["traffic back to blue"],
        compensation_errors=["scaled green to 0: throttled"],
    )
    ended = status(
        Phase.DONE,
        state=State.FAILED,
        report=report,
        warnings=["version 2 is already active on green"],
        phases=[
            PhaseEntry(phase=Phase.SETTING_UP, entered_at=NOW - timedelta(minutes=12)),
            PhaseEntry(phase=Phase.DONE, entered_at=NOW),
        ],
    )
    text = describe(ended, NOW)
    assert "- state: failed, phase: **done** after 12m" in text
    assert "- failed in switching: send all traffic to green: denied" in text
    assert "- restored: traffic back to blue" in text
    assert "- **not restored, needs a person**: scaled green to 0: throttled" in text
    assert text.endswith("- warning: version 2 is already active on green")


def test_a_traffic_step_shows_the_split_the_step_and_how_to_approve_it() -> None:
    waiting = status(
        Phase.SWITCHING,
        active_color_before="blue",
        target_color="green",
        traffic_plan=[10, 50, 100],
        traffic_step=2,
        traffic_split={"blue": 50, "green": 50},
        step_until=NOW + timedelta(hours=1),
        awaiting_step_approval=True,
        step_approvals=[],
    )
    text = describe(waiting, NOW)
    assert "- traffic: **green 50%, blue 50% (step 2 of 3, waiting for approval until" in text
    assert "**waiting for approval** of this step (`client.py approve deploy-game-prod`)" in text
    shown = summary(waiting)
    assert "  traffic: green 50%, blue 50% (step 2 of 3, waiting for approval until 13:00:00" in (
        shown
    )
    assert "  this step waits for approval: client.py approve deploy-game-prod" in shown

    holding = waiting.model_copy(
        update={
            "traffic_step": 1,
            "traffic_split": RouterWeights(blue=90, green=10),
            "awaiting_step_approval": False,
            "step_until": NOW + timedelta(minutes=5),
        }
    )
    assert "green 10%, blue 90% (step 1 of 3, holding until 12:05:00 UTC)" in describe(holding, NOW)
    assert "waiting for approval" not in describe(holding, NOW)


def test_the_analysis_shows_each_metric_s_tally_and_latest_verdict() -> None:
    tally = MetricTally(metric="error-rate", measurements=3, passes=2, inconclusive=1)
    tally.last = MetricResult(
        metric="error-rate",
        verdict="passed",
        value=0.01,
        requests=412,
        measured_at=NOW,
        reason="error-rate 0.01 <= max 0.05 (412 requests)",
    )
    judged = status(
        Phase.BAKING,
        active_color_before="blue",
        target_color="green",
        traffic_split={"blue": 0, "green": 100},
        analysis=[tally],
    )
    line = (
        "analysis: error-rate: 3 measured, 2 passed, 0 failed, 1 inconclusive;"
        " last: error-rate 0.01 <= max 0.05 (412 requests)"
    )
    assert f"- {line}" in describe(judged, NOW)
    assert f"  {line}" in summary(judged)
