"""Running the workflows on a test server with fake activities, and steering them by phase."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from models.deployment import DeploymentRequest, DeploymentStatus, Phase
from runtime.heartbeats import ActivityHeartbeats
from tests.factories import deployment_request
from tests.workflows.fake_aws import FakeAws
from workflows import ALL_WORKFLOWS
from workflows.deployment import BlueGreenDeployment

Handle = WorkflowHandle[BlueGreenDeployment, DeploymentStatus]


class Fakes(Protocol):
    """FakeAws, or RegionalFakeAws: whatever provides the fake activities."""

    def activities(self) -> list[Any]: ...


@asynccontextmanager
async def running_worker(
    client: Client, aws: Fakes, *, sandboxed: bool = True
) -> AsyncIterator[str]:
    """A worker with every workflow and ``aws``'s fake activities; yields its task queue.

    ``sandboxed=False`` runs the workflows outside Temporal's sandbox, which imports their
    modules anew for every workflow it starts: for hundreds of runs at once (the invariants
    tests), where determinism is not the question (the replay tests ask it).
    """
    task_queue = f"deploy-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=ALL_WORKFLOWS,
        activities=aws.activities(),
        interceptors=[ActivityHeartbeats()],
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
    ):
        yield task_queue


async def start(
    client: Client, task_queue: str, request: DeploymentRequest | None = None, **options: Any
) -> Handle:
    """Start a deployment (game 2 to prod unless ``request`` says otherwise)."""
    return await client.start_workflow(
        BlueGreenDeployment.run,
        request or deployment_request(),
        id=f"deployment-{uuid.uuid4()}",
        task_queue=task_queue,
        **options,
    )


async def outcome(handle: Handle) -> DeploymentStatus:
    """The final status, whether the deployment succeeded or not."""
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        assert isinstance(err.cause, ApplicationError)
        assert err.cause.type == "DeploymentFailed"
        return DeploymentStatus.model_validate(err.cause.details[0])


async def deploy(
    client: Client, aws: FakeAws, request: DeploymentRequest | None = None
) -> DeploymentStatus:
    """Run one deployment to its end and return its final status, failed or not."""
    async with running_worker(client, aws) as task_queue:
        return await outcome(await start(client, task_queue, request))


async def wait_for_phase(handle: Handle, phase: Phase, seconds: float = 30) -> DeploymentStatus:
    """Poll the status query until the deployment is in ``phase`` (real time: no skipping)."""
    last = "not started"
    for _ in range(int(seconds / 0.05)):
        try:
            status = await handle.query(BlueGreenDeployment.status)
        except RPCError as err:
            # A child a parent has not started yet.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            if status.phase == phase:
                return status
            last = status.phase.value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never reached {phase.value}; last: {last}")


async def signalled_in(
    client: Client,
    aws: Fakes,
    phase: Phase,
    signal: Any,
    arg: Any,
    request: DeploymentRequest | None = None,
    *,
    between_activities: bool = False,
) -> DeploymentStatus:
    """Start a deployment, send it ``signal`` once it is in ``phase`` (and, with
    ``between_activities``, waiting between two checks), and return how it ended."""
    async with running_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, request)
        await wait_for_phase(handle, phase)
        if between_activities:
            await wait_until_between_activities(handle)
        await handle.signal(signal, arg)
        return await outcome(handle)


async def wait_until_between_activities(
    handle: WorkflowHandle[Any, Any], seconds: float = 30
) -> None:
    """Poll until no activity of the workflow is scheduled or running: it waits on a timer or a
    condition, so that a message sent now cannot cross an activity's completion.

    A rollback cancels the read in flight. If that read completes while the workflow task
    carrying the cancel is out, Temporal accepts the cancel (the completion is buffered), but the
    time-skipping test server refuses the task ("ACTIVITY_UNKNOWN for scheduledEventId=…"),
    never hands it out again, and its clock stops for every later test of the session. A test
    that means to interrupt a wait sends its message from here.
    """
    for _ in range(int(seconds / 0.05)):
        description = await handle.describe()
        if not description.raw_description.pending_activities:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} kept an activity going for {seconds} s")


def phases(status: DeploymentStatus) -> list[Phase]:
    """The phases a deployment went through, in order."""
    return [entry.phase for entry in status.phases]


def assert_blue_untouched(aws: FakeAws) -> None:
    """Production as it was: blue active, all traffic, 2 tasks on version 1."""
    assert aws.active == "blue"
    assert aws.weights == {"blue": 100, "green": 0}
    assert aws.desired["blue"] == 2
    assert aws.versions["blue"] == "1"
    touched = [name for name, arg in aws.calls if getattr(arg, "target", None) is not None]
    assert all(arg.target.color == "green" for name, arg in aws.calls if name in touched)
