"""What the tests on the Temporal dev server share: the server, client.py and the Temporal CLI as
subprocesses, a deploy.toml written from a dict, waiting on a workflow's status.

Updates need the real server (the time-skipping one does not support them). Each test module
starts its own server (``temporal()`` in a module fixture) and runs its worker in-process on the
test's event loop, so the commands run asynchronously while the worker serves them.
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from local.processes import BIN, ROOT, free_port, temporal_dev_server
from runtime.heartbeats import ActivityHeartbeats
from tests.workflows.driving import Fakes
from workflows import ALL_WORKFLOWS

WAIT = 20.0
"""Seconds a test waits for a phase or a process; everything here takes well under one."""
T = TypeVar("T")
FakesT = TypeVar("FakesT", bound=Fakes)


@contextmanager
def temporal() -> Iterator[str]:
    """A Temporal dev server on a free port, without the Web UI; yields its address."""
    with temporal_dev_server(free_port(), ui_port=None) as address:
        yield address


@dataclass
class Server(Generic[FakesT]):
    """A module's dev server, a client of it, and the fakes its worker runs."""

    address: str
    client: Client
    aws: FakesT


@asynccontextmanager
async def serving(address: str, aws: FakesT, task_queue: str) -> AsyncIterator[Server[FakesT]]:
    """A worker on this event loop: every workflow, ``aws``'s fake activities on ``task_queue``."""
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=ALL_WORKFLOWS,
        activities=aws.activities(),
        interceptors=[ActivityHeartbeats()],
    ):
        yield Server(address, client, aws)


@dataclass
class Done:
    """A finished command."""

    returncode: int
    stdout: str
    stderr: str


async def client_py(address: str, task_queue: str, *args: str) -> Done:
    """Run client.py against the dev server at ``address`` and ``task_queue``."""
    env = _without_temporal_settings() | {
        "TEMPORAL_ADDRESS": address,
        "BLUEGREEN_TASK_QUEUE": task_queue,
    }
    return await _run([str(BIN / "python"), str(ROOT / "client.py"), *args], env)


async def temporal_cli(address: str, *args: str) -> Done:
    """Run the Temporal CLI against the dev server at ``address``."""
    return await _run(
        [str(BIN / "temporal"), *args, "--address", address], _without_temporal_settings()
    )


def write_config(path: Path, environments: dict[str, dict[str, Any]]) -> Path:
    """A deploy.toml for service game with these environments (as ``tests.factories`` dicts)."""
    path.write_text(f'service = "game"\nenvironments = {_toml(environments)}\n')
    return path


async def wait_for(read: Callable[[], Awaitable[T]], check: Callable[[T], bool], what: str) -> T:
    """Call ``read`` until ``check`` holds for what it returns; fail after ``WAIT`` seconds."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        value = await read()
        if check(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"not {what}: {value}"
        await asyncio.sleep(0.05)


async def terminate_running(handles: list[WorkflowHandle[Any, Any]]) -> None:
    """Terminate those of ``handles`` still running: the next test starts from a clean slate."""
    for handle in handles:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("end of test")


def refused(done: Done, expected: str) -> None:
    """Exit 4 and one line, starting as ``expected`` says."""
    assert done.returncode == 4, done
    assert done.stderr.startswith(f"client.py: refused: {expected}"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""


def _without_temporal_settings() -> dict[str, str]:
    # A developer's TEMPORAL_* settings (TLS, API key, profile) must not reach the dev server.
    return {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}


async def _run(command: list[str], env: dict[str, str]) -> Done:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # Asynchronously: the worker runs on this event loop while the command waits for it.
    stdout, stderr = await asyncio.wait_for(process.communicate(), 3 * WAIT)
    assert process.returncode is not None
    return Done(process.returncode, stdout.decode(), stderr.decode())


def _toml(value: Any) -> str:
    """A TOML value as one line (inline tables and arrays): enough for a test deploy.toml."""
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{_key(key)} = {_toml(item)}" for key, item in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _key(key: str) -> str:
    # Region names (us-east-1) are bare keys; anything else is quoted.
    return key if key.replace("-", "").replace("_", "").isalnum() else json.dumps(key)
