"""Replay recorded histories: a workflow change that would break running deployments fails here."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.workflows.record_histories import CHILD, HISTORIES, scenarios
from workflows import ALL_WORKFLOWS


def test_every_scenario_has_a_recorded_history() -> None:
    assert sorted({p.stem.split(CHILD)[0] for p in HISTORIES.glob("*.json")}) == sorted(scenarios())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays_on_the_current_code(path: Path) -> None:
    # The ID it was recorded under: a parent derives its children's IDs from it.
    workflow_id = f"record-{path.stem.replace(CHILD, '-')}"
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
