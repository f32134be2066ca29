"""No client waits forever: with Temporal up and no worker on the task queue, ``deploy --wait``,
``approve`` and ``rollback`` exit 5 with one line within BLUEGREEN_NO_WORKER_TIMEOUT seconds.

Each test takes a fresh task queue that no worker ever polls; the deployments it starts stay as
they are (they would go on when a worker came) and are terminated at the end.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from cli import deployment_kinds, workers
from cli.workers import WorkerWatch
from models.deployment_phase import Phase
from models.errors import NoWorkerError
from tests import dev_server
from tests.dev_server import WAIT, Done
from tests.factories import ENVIRONMENT, deployment_request, environment
from tests.workflows.fake_aws import FakeAws
from workflows.deployment import BlueGreenDeployment

BOUND = 1.0
"""The test's BLUEGREEN_NO_WORKER_TIMEOUT, in seconds."""


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> str:
    """A task queue no worker polls, and a short bound for client.py (which inherits the env)."""
    monkeypatch.setenv("BLUEGREEN_NO_WORKER_TIMEOUT", str(BOUND))
    return f"no-worker-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def client(temporal: str) -> AsyncIterator[Client]:
    yield await Client.connect(temporal, data_converter=pydantic_data_converter)


def no_worker(done: Done, queue: str, address: str, took: float) -> None:
    """Exit 5, within the bound (and the time to connect and ask), with the one line."""
    assert done.returncode == 5, done
    assert done.stderr.splitlines()[-1] == (
        f"client.py: no worker polls task queue {queue!r} at {address} (waited {BOUND:g} s);"
        " is worker.py running with the same BLUEGREEN_TASK_QUEUE?"
    ), done.stderr
    assert took < BOUND + WAIT / 2, took


async def test_deploy_wait_without_a_worker_exits_5(
    temporal: str, queue: str, client: Client, tmp_path: Path
) -> None:
    config = dev_server.write_config(tmp_path / "deploy.toml", {"prod": ENVIRONMENT})
    args = ["--config", str(config), "--environment", "prod", "--version", "2", "--image", "game:2"]
    began = time.monotonic()
    done = await dev_server.client_py(temporal, queue, "deploy", *args, "--wait")
    took = time.monotonic() - began

    no_worker(done, queue, temporal, took)
    assert done.stdout.startswith("started deployment deploy-game-prod"), done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    # Left as it is: it goes on when a worker comes.
    await dev_server.terminate_running([client.get_workflow_handle("deploy-game-prod")])


@pytest.mark.parametrize(
    "command", [["approve", "--by", "alice"], ["rollback", "--reason", "bug", "--json"]]
)
async def test_approve_and_rollback_without_a_worker_exit_5(
    temporal: str, queue: str, client: Client, command: list[str]
) -> None:
    request = deployment_request(environment(), environment="nobody", require_approval=True)
    handle = await deployment_kinds.start(client, request, queue)
    try:
        began = time.monotonic()
        done = await dev_server.client_py(temporal, queue, command[0], handle.id, *command[1:])
        took = time.monotonic() - began

        no_worker(done, queue, temporal, took)
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""
    finally:
        await dev_server.terminate_running([handle])


async def test_with_a_worker_polling_approve_goes_on_as_before(
    temporal: str, queue: str, client: Client
) -> None:
    request = deployment_request(environment(), environment="served", require_approval=True)
    async with dev_server.serving(temporal, FakeAws(), queue):
        handle = await deployment_kinds.start(client, request, queue)
        try:
            await dev_server.wait_for(
                lambda: handle.query(BlueGreenDeployment.status),
                lambda status: status.phase == Phase.AWAITING_APPROVAL,
                "awaiting approval",
            )
            done = await dev_server.client_py(temporal, queue, "approve", handle.id, "--by", "al")

            assert done.returncode == 0, done
            assert done.stdout.startswith(f"approved {handle.id} as al: switching"), done.stdout
        finally:
            await dev_server.terminate_running([handle])


async def test_a_worker_that_stops_while_waiting_ends_the_wait(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real worker's polls count as recent for two minutes after it stops: too long for a
    # test, so the server's answers are played here, the rest of the watch is as it runs.
    answers = iter([True, True, True])  # seen before the wait and early in it, then never again
    asked: list[str] = []

    async def polled(_: Client, task_queue: str) -> bool:
        asked.append(task_queue)
        return next(answers, False)

    monkeypatch.setattr(workers, "polled", polled)
    monkeypatch.setattr(workers, "CHECK_EVERY", 0.05)
    forever = asyncio.Event()

    with pytest.raises(NoWorkerError, match=r"^no worker polls task queue 'q' at .* 0.2 s\)"):
        await asyncio.wait_for(WorkerWatch(0.2).bounded(client, "q", forever.wait), WAIT)
    assert len(asked) > 3 and set(asked) == {"q"}

    # A wait that ends while a worker polls gives its result.
    monkeypatch.setattr(workers, "polled", lambda *_: asyncio.sleep(0, True))
    assert await WorkerWatch(0.2).bounded(client, "q", lambda: asyncio.sleep(0.5, "done")) == "done"
