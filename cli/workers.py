"""Whether a worker polls a task queue: so that no client command waits forever for none.

With Temporal up but no worker on the task queue (a worker down, another BLUEGREEN_TASK_QUEUE),
``deploy --wait``, ``approve`` and ``rollback`` would wait with no limit. ``WorkerWatch.bounded``
runs their wait while asking the server (DescribeTaskQueue) whether a worker polls; after
BLUEGREEN_NO_WORKER_TIMEOUT seconds without one it gives up with NoWorkerError (exit code 5).
The deployment is left as it is: it goes on when a worker comes.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn, TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from models.errors import ConfigError, NoWorkerError

T = TypeVar("T")

TIMEOUT_VARIABLE = "BLUEGREEN_NO_WORKER_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
"""Seconds without a worker polling before a client gives up."""
CHECK_EVERY = 5.0
"""Seconds between two questions to the server while waiting."""
POLLER_FRESH = timedelta(minutes=2)
"""How recent a poll counts as a worker that is there. The server records when a poll began and
an idle worker's long poll lasts up to a minute: a live worker's last poll can be that old."""


def no_worker_timeout() -> float:
    """BLUEGREEN_NO_WORKER_TIMEOUT in seconds (default 60); bad input is a ConfigError (exit 2)."""
    given = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not given:  # an unset CI secret arrives empty: empty means not set
        return DEFAULT_TIMEOUT
    try:
        seconds = float(given)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):  # also refuses nan
        raise ConfigError(f"{TIMEOUT_VARIABLE}={given!r}: must be a number of seconds above 0")
    return seconds


@dataclass(frozen=True)
class WorkerWatch:
    """How long a client waits with no worker polling; made before connecting, used after."""

    timeout: float

    @classmethod
    def from_environment(cls) -> "WorkerWatch":
        """The watch BLUEGREEN_NO_WORKER_TIMEOUT asks for (a ConfigError if it is bad)."""
        return cls(no_worker_timeout())

    async def bounded(self, client: Client, task_queue: str, wait: Callable[[], Awaitable[T]]) -> T:
        """``wait()``'s result, or NoWorkerError once no worker has polled ``task_queue`` for
        ``timeout`` seconds: before it starts (an update sent with no worker would run whenever
        one comes) and while it runs (the worker may stop halfway)."""
        await self._watch(client, task_queue, until_seen=True)
        work = asyncio.ensure_future(wait())
        watch = asyncio.ensure_future(self._watch(client, task_queue, until_seen=False))
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                watch.result()  # raises: the watch only ends by giving up
            return work.result()
        finally:
            work.cancel()
            watch.cancel()

    async def _watch(self, client: Client, task_queue: str, *, until_seen: bool) -> None:
        """Return once a worker is seen (``until_seen``), else watch until none has polled for
        ``timeout`` seconds and raise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            if await polled(client, task_queue):
                if until_seen:
                    return
                deadline = loop.time() + self.timeout
            elif loop.time() >= deadline:
                self._give_up(client, task_queue)
            await asyncio.sleep(min(CHECK_EVERY, max(deadline - loop.time(), 0.0)))

    def _give_up(self, client: Client, task_queue: str) -> NoReturn:
        address = client.service_client.config.target_host
        raise NoWorkerError(
            f"no worker polls task queue {task_queue!r} at {address} (waited {self.timeout:g} s);"
            " is worker.py running with the same BLUEGREEN_TASK_QUEUE?"
        )


async def polled(client: Client, task_queue: str) -> bool:
    """Whether a worker has polled ``task_queue`` for workflow tasks within POLLER_FRESH."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        described = await client.workflow_service.describe_task_queue(request)
    except RPCError:
        # No answer (no permission to describe, a blip) proves nothing: never fail a wait on it.
        return True
    fresh_since = datetime.now(UTC) - POLLER_FRESH
    return any(p.last_access_time.ToDatetime(tzinfo=UTC) >= fresh_since for p in described.pollers)
