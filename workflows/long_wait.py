"""Waits that last hours or days: the first checks in the deployment, the rest in a child.

Every check of a wait loop costs about 11 history events (an activity, a timer, two workflow
tasks). A 2-hour bake checked every 15 s would put 5,000 of them in the deployment's history, a
48-hour drain 60,000, where Temporal warns at 10,240 and stops a workflow at 51,200.

So a wait runs its first ``INLINE_CHECKS`` checks in the deployment's own history, which is all a
usual wait needs (a service turns healthy, players leave) and costs nothing more. A wait still
going after that moves to a child workflow, ``LongWait`` (``<deployment ID>-<wait>``), that
continues as new every ``CHECKS_PER_RUN`` checks, carrying its progress: no history grows past
about 1,500 events however long the waits. The deployment awaits the child's result; a rollback
cancels it, and the child answers by returning what it saw last.

This module is that mechanism, the same for every wait: :class:`LongWaits` is the deployment's
side, :func:`run_in_child` the child's. What differs from one wait to another is a
:class:`Wait`; the health, bake and drain waits and the ``LongWait`` workflow are in
workflows/waits.py.
"""

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from models.colors import Color
    from models.deployment import DeploymentStatus, Phase
    from models.durations import format_duration
    from models.long_wait import InputT, SeenT, WaitProgress, WaitRequest
    from workflows.calls import Calls, StepFailed

LONG_WAIT = "LongWait"
"""The child workflow's type (workflows/waits.py)."""

CHECKS_PER_RUN = 100
"""About 1,100 history events per run of a child: far under Temporal's 10,240-event warning."""

INLINE_CHECKS = 40
"""About 440 events per wait in the deployment's history: its three waits and every other step
stay under 2,000 events."""

WATCH_STOP_TIMEOUT = timedelta(minutes=1)
"""How long a rolled-back deployment waits for its cancelled child's last word."""


class Wait(ABC, Generic[InputT, SeenT]):
    """One kind of long wait: what a check looks at (``InputT``) and sees (``SeenT``), when that
    ends the wait, how its child shows it, where the deployment's status keeps it.

    A subclass in workflows/waits.py, listed in its ``WAITS``, is all a new wait needs here.
    """

    name: str
    """In the request and in the child's ID, ``<deployment ID>-<name>``."""
    phase: Phase
    """The deployment's phase while it waits."""
    what: str
    """What is checked, in the timers' summaries (``next <what> check``); ``{color}`` stands
    for the color the wait is about."""
    goal: str
    """What the wait is for, in the child's summary and details; ``{color}`` as in ``what``."""
    request_type: type[WaitRequest[InputT, SeenT]]
    progress_type: type[WaitProgress[SeenT]]

    @abstractmethod
    async def check(self, calls: Calls, request: WaitRequest[InputT, SeenT]) -> SeenT:
        """One check: a read-only activity, which a rollback abandons."""

    @abstractmethod
    def met(self, seen: SeenT) -> bool:
        """Whether what a check saw ends the wait before its deadline."""

    @abstractmethod
    def show_last(self, last: SeenT | None) -> list[str]:
        """The latest observation as Markdown list items, in the child's details."""

    @abstractmethod
    def record(self, status: DeploymentStatus, progress: WaitProgress[SeenT]) -> None:
        """Put the checks so far and the latest observation into the deployment's status."""

    async def check_once(self, calls: Calls, request: WaitRequest[InputT, SeenT]) -> bool:
        """One check, counted in ``request.progress`` with what it saw; whether the wait is met."""
        seen = await self.check(calls, request)
        request.progress.checks += 1
        request.progress.last = seen
        return self.met(seen)


class _Overflow(Exception):
    """The wait is past INLINE_CHECKS checks: the rest goes to a child."""


class LongWaits:
    """A deployment's long waits: the status follows every check; a child goes on with a wait
    past INLINE_CHECKS checks, and the deployment learns its figures when it ends.

    ``changed`` is called when the status changed, ``moved`` when a child took a wait over (a
    multi-region parent's status then says where to look).
    """

    def __init__(
        self,
        calls: Calls,
        status: DeploymentStatus,
        changed: Callable[[], None],
        moved: Callable[[], None],
    ) -> None:
        self._calls = calls
        self._status = status
        self._changed = changed
        self._moved = moved
        self._watching: asyncio.Future[Any] | None = None

    async def run(
        self,
        wait: Wait[InputT, SeenT],
        color: Color,
        check: InputT,
        *,
        poll_interval: timedelta,
        timeout: timedelta,
    ) -> WaitProgress[SeenT]:
        """Check ``check`` every ``poll_interval`` until ``wait`` is met or ``timeout``; return the
        progress (``met`` says which). A rollback raises Interrupted; :meth:`stop` then."""
        request = wait.request_type(
            wait=wait.name,
            deployment_id=self._status.deployment_id,
            color=color,
            check=check,
            poll_interval=poll_interval,
            until=workflow.now() + timeout,
            progress=wait.progress_type(),
        )

        async def inline() -> bool:
            if request.progress.checks == INLINE_CHECKS:
                raise _Overflow()
            met = await wait.check_once(self._calls, request)
            wait.record(self._status, request.progress)
            self._changed()
            return met

        try:
            request.progress.met = await poll_until(
                inline,
                poll_interval=poll_interval,
                timeout=timeout,
                what=wait.what.format(color=color),
                sleep=self._calls.pause,
            )
        except _Overflow:
            # Where the next check would have started, after a sleep: the child starts checking.
            return await self._in_child(wait, request)
        return request.progress

    async def _in_child(
        self, wait: Wait[InputT, SeenT], request: WaitRequest[InputT, SeenT]
    ) -> WaitProgress[SeenT]:
        """Go on in a ``LongWait`` child; record its progress in the status when it ends, also
        when a rollback stopped it."""
        self._status.watch_workflow_id = f"{request.deployment_id}-{wait.name}"
        self._changed()
        self._moved()
        child = await workflow.start_child_workflow(
            LONG_WAIT,
            request,
            id=self._status.watch_workflow_id,
            result_type=wait.progress_type,
            static_summary=wait.goal.format(color=request.color)
            + f", every {format_duration(request.poll_interval)}",
        )

        async def watched() -> WaitProgress[SeenT]:
            try:
                progress: WaitProgress[SeenT] = await child
            except ChildWorkflowError as err:
                raise step_failed(err) from err
            wait.record(self._status, progress)
            self._changed()
            return progress

        self._watching = watching = asyncio.ensure_future(watched())
        try:
            return await self._calls.abandonable(watching)
        finally:
            if watching.done():  # else a rollback abandoned it: stop() waits for it
                self._watching = None

    async def stop(self) -> None:
        """After a rollback in a long wait, let its child record what it saw last.

        The rollback cancelled the child and did not wait for it; the child answers a cancel by
        returning its progress. By now production is restored, so waiting a moment costs nothing.
        """
        watching, self._watching = self._watching, None
        if watching is None:
            return
        try:
            await workflow.wait_condition(watching.done, timeout=WATCH_STOP_TIMEOUT)
            watching.result()
        except (TimeoutError, StepFailed, asyncio.CancelledError) as err:
            workflow.logger.warning("no last word from %s: %s", self._status.watch_workflow_id, err)


async def run_in_child(
    wait: Wait[InputT, SeenT], request: WaitRequest[InputT, SeenT]
) -> WaitProgress[SeenT]:
    """The body of the ``LongWait`` child: check until ``wait`` is met or ``request.until``,
    continuing as new every CHECKS_PER_RUN checks with the progress in the request.

    A cancel is the deployment rolling back: the child ends normally (not met), so that the
    deployment can record the progress as its last word. A step that failed fails the child.
    """
    calls, what = Calls(), wait.what.format(color=request.color)
    checks_in_run = 0

    async def in_runs() -> bool:
        nonlocal checks_in_run
        if checks_in_run == CHECKS_PER_RUN:
            workflow.continue_as_new(request)
        checks_in_run += 1
        met = await wait.check_once(calls, request)
        workflow.set_current_details(_details(wait, request))
        return met

    try:
        request.progress.met = await poll_until(
            in_runs,
            poll_interval=request.poll_interval,
            timeout=request.until - workflow.now(),
            what=what,
        )
    except asyncio.CancelledError:
        workflow.logger.info("%s checks stopped: the deployment is rolling back", what)
    except StepFailed as failure:
        # Raised as it is, it would fail the workflow task and be retried forever, and the
        # deployment would hang instead of putting production back.
        raise ApplicationError(
            failure.reason, type=failure.error_type, non_retryable=True
        ) from None
    return request.progress


def _details(wait: Wait[InputT, SeenT], request: WaitRequest[InputT, SeenT]) -> str:
    """The child's current details in the Web UI: the latest check, how many so far, until when."""
    progress = request.progress
    return "\n".join(
        [
            f"**{request.deployment_id}: {wait.goal.format(color=request.color)}**",
            "",  # the Web UI renders the lines as a list only after a blank line
            *wait.show_last(progress.last),
            f"- {checks(progress.checks)} so far, every {format_duration(request.poll_interval)},"
            f" until {request.until:%Y-%m-%d %H:%M:%S} UTC",
        ]
    )


def step_failed(err: ChildWorkflowError) -> StepFailed:
    """A wait's child that failed, as the deployment's StepFailed: production is put back."""
    cause = err.cause
    reason = cause.message if isinstance(cause, FailureError) else str(err)
    error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    return StepFailed(reason, error_type or "WaitFailed")


async def _sleep(duration: timedelta, summary: str) -> None:
    await workflow.sleep(duration, summary=summary)


async def poll_until(
    check: Callable[[], Awaitable[bool]],
    *,
    poll_interval: timedelta,
    timeout: timedelta,
    what: str,
    sleep: Callable[[timedelta, str], Awaitable[None]] = _sleep,
) -> bool:
    """Run ``check`` until it returns True (then True) or ``timeout`` has passed (then False).

    The sleeps are Temporal timers: a worker restart or a week-long wait costs nothing, and the
    time-skipping test server runs hours of waiting in seconds. ``sleep`` may end a wait early
    by raising (a rollback does, through ``Calls.pause``).
    """
    deadline = workflow.now() + timeout
    while True:
        if await check():
            return True
        remaining = deadline - workflow.now()
        if remaining <= timedelta(0):
            return False
        await sleep(min(poll_interval, remaining), f"next {what} check")


def checks(count: int) -> str:
    """1 check, 2 checks."""
    return f"{count} check" if count == 1 else f"{count} checks"
