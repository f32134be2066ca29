"""Judging the new color while it has traffic, beside the sequence: the alarms during traffic
steps (the bake watches them itself), each on its own loop.

A loop that finds a reason to roll back records it as ``failure`` and ends; the deployment
treats a failure like a rollback request: its next safe point stops it and all traffic goes
back to the old color first.
"""

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.activities import AlarmsInput
    from models.deployment import DeploymentStatus
    from models.durations import format_duration
    from workflows.calls import Calls, Interrupted, StepFailed
    from workflows.waits import firing, read_alarms


class Analysis:
    """The loops that judge the new color, started and stopped by the deployment."""

    def __init__(
        self, calls: Calls, status: DeploymentStatus, on_change: Callable[[], None]
    ) -> None:
        self._calls = calls
        self._status = status
        self._on_change = on_change
        self._alarm_loop: asyncio.Task[None] | None = None
        self.failure: StepFailed | None = None
        """Why the new color must not keep its traffic; None while nothing says so."""

    def watch_alarms(self, request: AlarmsInput, every: timedelta) -> None:
        """Read the alarms every ``every`` until ``stop_alarms``; one in ALARM is a failure."""
        if request.alarm_names and self._alarm_loop is None:
            self._alarm_loop = self._start(self._watch_alarms(request, every))

    async def stop_alarms(self) -> None:
        """End the alarm loop (the bake takes the alarms over)."""
        loop, self._alarm_loop = self._alarm_loop, None
        await _stopped(loop)

    async def _watch_alarms(self, request: AlarmsInput, every: timedelta) -> None:
        status = self._status
        while True:
            seen = await read_alarms(self._calls, request)
            status.alarm_checks += 1
            status.last_alarms = seen
            if firing(seen):
                self._fail(
                    StepFailed(
                        "; ".join(f"alarm {a.name} is in ALARM: {a.reason}" for a in firing(seen)),
                        "AlarmFired",
                    )
                )
                return
            await self._calls.pause(every, f"next alarm check in {format_duration(every)}")

    def _start(self, loop: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await loop
            except Interrupted:
                return  # the deployment stops at its own safe point
            except StepFailed as failure:
                self._fail(failure)

        return asyncio.create_task(guarded())

    def _fail(self, failure: StepFailed) -> None:
        if self.failure is None:
            self.failure = failure
            self._on_change()


async def _stopped(loop: asyncio.Task[None] | None) -> None:
    if loop is None or loop.done():
        return
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
