"""Running activities from workflow code, and stopping at a safe point when asked to.

A deployment can be told to roll back at any time. It must not stop in the middle of a change
(a half-done switch is worse than a finished one), but it need not finish a read or a wait
first. So: every activity call is a safe point before it starts, reads may be abandoned while
they run or retry, and waits end early.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows.options import CALL_RETRY, CALL_TIMEOUT, HEARTBEAT_TIMEOUT

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


class StepFailed(Exception):
    """A step of the sequence could not be done; ``reason`` is written for people."""

    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class Interrupted(Exception):
    """The workflow was asked to stop (a rollback) and reached a point where it safely can."""


def never() -> bool:
    """The interruption test of a workflow that cannot be interrupted."""
    return False


class Calls:
    """Activity calls and waits that stop at the next safe point once ``interrupted()`` is true."""

    def __init__(self, interrupted: Callable[[], bool] = never) -> None:
        self._interrupted = interrupted

    def interrupted(self) -> bool:
        """Whether the workflow was asked to stop (a wait's condition may end on it)."""
        return self._interrupted()

    def raise_if_interrupted(self) -> None:
        """A safe point: raise Interrupted if the workflow was asked to stop."""
        if self._interrupted():
            raise Interrupted()

    async def activity(
        self,
        activity: Callable[[ArgT], ResultT],
        arg: ArgT,
        *,
        summary: str,
        retry: RetryPolicy = CALL_RETRY,
        read_only: bool = False,
    ) -> ResultT:
        """Run an activity; its failure becomes a StepFailed carrying AWS's own message.

        A ``read_only`` activity changes nothing, so an interruption abandons it (retries and
        backoff included) instead of waiting for it to finish.
        """
        self.raise_if_interrupted()
        handle = workflow.start_activity(
            activity,
            arg,
            start_to_close_timeout=CALL_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry,
            summary=summary,
        )
        if read_only:
            try:
                await workflow.wait_condition(lambda: handle.done() or self._interrupted())
            except asyncio.CancelledError:
                handle.cancel()  # the workflow itself is cancelled: abandon the read too
                raise
            if not handle.done():
                handle.cancel()
        try:
            return await handle
        except (ActivityError, asyncio.CancelledError) as err:
            self.raise_if_interrupted()
            if isinstance(err, asyncio.CancelledError):
                raise
            cause = err.cause
            message = cause.message if isinstance(cause, FailureError) else str(err)
            error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
            raise StepFailed(
                f"{summary}: {message}", error_type or type(cause or err).__name__
            ) from err

    async def abandonable(self, work: Awaitable[ResultT]) -> ResultT:
        """Await work that changes nothing (a child that only watches): an interruption cancels
        it and raises Interrupted at once, as it abandons a read-only activity."""
        task = asyncio.ensure_future(work)
        try:
            await workflow.wait_condition(lambda: task.done() or self._interrupted())
        except asyncio.CancelledError:
            task.cancel()  # the workflow itself is cancelled: stop the work too
            raise
        if not task.done():
            task.cancel()
            raise Interrupted()
        return await task

    async def pause(self, duration: timedelta, summary: str) -> None:
        """A durable timer that ends early, raising Interrupted, when the workflow must stop."""
        try:
            await workflow.wait_condition(
                self._interrupted, timeout=duration, timeout_summary=summary
            )
        except TimeoutError:
            return
        self.raise_if_interrupted()
