"""Wait loops: check, durable timer, check … until the check passes or the time is up."""

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow


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
