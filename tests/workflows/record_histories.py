"""Record the histories the replay test replays: ``python -m tests.workflows.record_histories``.

Re-record only on purpose, after a workflow change that is meant to be incompatible and is
guarded (``workflow.patched``, or a new workflow type) for deployments already running.
"""

import asyncio
import contextlib
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli import exit_now
from tests.factories import deployment_request
from tests.workflows.conftest import TEST_SERVER
from tests.workflows.fake_aws import FakeAws
from workflows.deployment import BlueGreenDeployment

HISTORIES = Path(__file__).parent / "histories"


def scenarios() -> dict[str, FakeAws]:
    """One history per path through the workflow that running deployments may be on."""
    denied = ApplicationError(
        "ModifyListener: AccessDenied: denied", type="AccessDenied", non_retryable=True
    )
    return {
        "succeeded_after_drain": FakeAws(connections=[3, 1, 0]),
        "failed_health_timeout": FakeAws(healthy_after=None),
        "failed_after_switch_restored": FakeAws(failures={"switch_traffic": [denied]}),
    }


async def record() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
    )
    async with env:
        for name, aws in scenarios().items():
            task_queue = f"record-{uuid.uuid4()}"
            async with Worker(
                env.client,
                task_queue=task_queue,
                workflows=[BlueGreenDeployment],
                activities=aws.activities(),
            ):
                handle = await env.client.start_workflow(
                    BlueGreenDeployment.run,
                    deployment_request(),
                    id=f"record-{name}",
                    task_queue=task_queue,
                )
                with contextlib.suppress(WorkflowFailureError):
                    await handle.result()
                history = await handle.fetch_history()
            last = history.events[-1].event_type
            assert last in (
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            )
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(record())
    exit_now(0)
