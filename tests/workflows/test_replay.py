"""Replay recorded histories: a workflow change that would break running deployments fails here."""

import ast
import logging
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.workflows.record_histories import CHILD, HISTORIES, scenarios
from workflows import ALL_WORKFLOWS

ROOT = Path(__file__).parents[2]
WORKFLOW_LOGGER = workflow.logger.base_logger.name


def test_every_scenario_has_a_recorded_history() -> None:
    assert sorted({p.stem.split(CHILD)[0] for p in HISTORIES.glob("*.json")}) == sorted(scenarios())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays_on_the_current_code_and_logs_nothing(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The ID it was recorded under: a parent derives its children's IDs from it.
    workflow_id = f"record-{path.stem.replace(CHILD, '-')}"
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    # The failure itself in the message: a nondeterminism error names the command that differs.
    assert result.replay_failure is None, str(result.replay_failure)
    # A worker replays after every restart: workflow code must not log again then.
    assert [r.getMessage() for r in caplog.records if r.name == WORKFLOW_LOGGER] == []
    assert not [r for r in caplog.records if hasattr(r, "temporal_workflow")]


# --- logging --------------------------------------------------------------------------------


async def replay_every_history(pattern: str) -> None:
    """Replay every recorded history (named ``pattern``), as a worker does after a restart."""
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    for path in sorted(HISTORIES.glob(f"{pattern}.json")):
        workflow_id = f"record-{path.stem.replace(CHILD, '-')}"
        history = WorkflowHistory.from_json(workflow_id, path.read_text())
        await replayer.replay_workflow(history, raise_on_replay_failure=True)


async def test_the_same_replay_would_log_if_workflow_logger_logged_during_replays(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check of every replay can fail: the histories do reach workflow.logger's lines.
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(workflow.logger, "log_during_replay", True)
    await replay_every_history("*_drained")
    await replay_every_history("succeeded_after_drain")

    lines = [r.getMessage() for r in caplog.records if r.name == WORKFLOW_LOGGER]
    assert any("approved by alice" in line for line in lines), lines
    assert any("record-succeeded_after_drain: done" in line for line in lines), lines


def test_workflow_code_logs_through_workflow_logger_only() -> None:
    # print() and the logging module would log again on every replay.
    for path in sorted((ROOT / "workflows").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{path.name}:{node.lineno}: print()"
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                modules.append(getattr(node, "module", None) or "")
                assert "logging" not in modules, f"{path.name}:{node.lineno}: import logging"
