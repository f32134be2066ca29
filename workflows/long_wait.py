"""Waits that last hours or days: the first checks in the deployment, the rest in a child.

Every check of a wait loop costs about 11 history events (an activity, a timer, two workflow
tasks). A 2-hour bake checked every 15 s would put 5,000 of them in the deployment's history, a
48-hour drain 60,000, where Temporal warns at 10,240 and stops a workflow at 51,200.

So a wait runs its first ``INLINE_CHECKS`` checks in the deployment's own history, which is all a
usual wait needs (a service turns healthy, players leave) and costs nothing more. A wait still
going after that moves to a child workflow (workflows/health.py, bake.py, drain.py) that
continues as new every ``CHECKS_PER_RUN`` checks, carrying its progress: no history grows past
about 1,500 events however long the waits. The deployment awaits the child's result; a rollback
cancels it, and the child answers by returning what it saw last.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol, Self

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.calls import StepFailed
    from workflows.waiting import poll_until

CHECKS_PER_RUN = 100
"""About 1,100 history events per run of a child: far under Temporal's 10,240-event warning."""

INLINE_CHECKS = 40
"""About 440 events per wait in the deployment's history: its three waits and every other step
stay under 2,000 events."""


class _Overflow(Exception):
    """The wait is past INLINE_CHECKS checks: the rest goes to a child."""


async def wait_inline_then_in_child(
    check: Callable[[], Awaitable[bool]],
    *,
    poll_interval: timedelta,
    timeout: timedelta,
    what: str,
    sleep: Callable[[timedelta, str], Awaitable[None]],
    in_child: Callable[[datetime], Awaitable[bool]],
) -> bool:
    """``poll_until`` for the first INLINE_CHECKS checks, then ``in_child(deadline)``.

    The move happens where the next check would start (after a sleep).
    """
    deadline = workflow.now() + timeout
    checks = 0

    async def counted() -> bool:
        nonlocal checks
        if checks == INLINE_CHECKS:
            raise _Overflow()
        checks += 1
        return await check()

    try:
        return await poll_until(
            counted, poll_interval=poll_interval, timeout=timeout, what=what, sleep=sleep
        )
    except _Overflow:
        return await in_child(deadline)


async def poll_in_runs(
    check: Callable[[], Awaitable[bool]],
    *,
    poll_interval: timedelta,
    until: datetime,
    what: str,
    continue_as_new: Callable[[], NoReturn],
) -> bool:
    """``poll_until`` up to ``until``, spread over runs: after CHECKS_PER_RUN checks in this run,
    where the next check would start, ``continue_as_new()`` carries on in a new run."""
    checks = 0

    async def counted() -> bool:
        nonlocal checks
        if checks == CHECKS_PER_RUN:
            continue_as_new()
        checks += 1
        return await check()

    return await poll_until(
        counted, poll_interval=poll_interval, timeout=until - workflow.now(), what=what
    )


class ChildWaitRequest(Protocol):
    """What a wait's child is asked: its pace, its deadline, and the progress it carries."""

    poll_interval: timedelta
    until: datetime

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """The request for the next run, with ``update`` (the progress) in it."""
        ...


async def run_child_wait(
    check: Callable[[], Awaitable[bool]], request: ChildWaitRequest, progress: Any, what: str
) -> bool:
    """The body of a wait's child workflow: ``check`` until it passes (True) or ``request.until``
    (False), continuing as new with ``progress`` carried in the request.

    A cancel is the deployment rolling back: the child ends normally (False), so that the
    deployment can record ``progress`` as its last word. A step that failed fails the child.
    """
    try:
        return await poll_in_runs(
            check,
            poll_interval=request.poll_interval,
            until=request.until,
            what=what,
            continue_as_new=lambda: workflow.continue_as_new(
                request.model_copy(update={"progress": progress})
            ),
        )
    except asyncio.CancelledError:
        workflow.logger.info("%s checks stopped: the deployment is rolling back", what)
        return False
    except StepFailed as failure:
        raise child_failure(failure) from None


def child_failure(failure: StepFailed) -> ApplicationError:
    """A step that failed in a wait's child (an AccessDenied on a health check, say), as the
    child's own failure: raised as it is, it would fail the workflow task and be retried
    forever, and the deployment would hang instead of putting production back."""
    return ApplicationError(failure.reason, type=failure.error_type, non_retryable=True)


def step_failed(err: ChildWorkflowError) -> StepFailed:
    """A wait's child that failed, as the deployment's StepFailed: production is put back."""
    cause = err.cause
    reason = cause.message if isinstance(cause, FailureError) else str(err)
    error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    return StepFailed(reason, error_type or "WaitFailed")
