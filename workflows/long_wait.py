"""Waits that last hours or days, run in child workflows that continue as new.

Every check of a wait loop costs about 11 history events (an activity, a timer, two workflow
tasks). A 2-hour bake checked every 15 s would put 5,000 of them in the deployment's history, a
48-hour drain 60,000, where Temporal warns at 10,240 and stops a workflow at 51,200. So the bake's
alarm checks and the drain's counts run in a child each (workflows/bake.py, workflows/drain.py)
that continues as new every ``CHECKS_PER_RUN`` checks, carrying its progress: no history grows
past about 1,100 events however long the wait. The deployment starts the child and awaits its
result; a rollback cancels it, and the child answers by returning what it saw last.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.waiting import poll_until

CHECKS_PER_RUN = 100
"""About 1,100 history events per run: far under Temporal's 10,240-event warning."""


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
