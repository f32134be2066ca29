"""Every running activity heartbeats while its worker is alive, so a dead worker is noticed in
seconds.

Without heartbeats, Temporal learns that a worker died in the middle of an activity only when
the activity's start-to-close timeout (60 s) passes; only then does another worker retry it.
With a heartbeat timeout on every call (``workflows/options.py``) and this interceptor on every
worker, a killed worker's activity is retried HEARTBEAT_TIMEOUT after its last heartbeat.

The heartbeat comes from the worker's event loop, not from the activity's thread: it says the
worker is alive, which is the question. An AWS or HTTP call that hangs in a live worker is
still bounded by its own timeouts and the start-to-close timeout.
"""

import asyncio
from typing import Any

from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from workflows.options import HEARTBEAT_EVERY


class ActivityHeartbeats(Interceptor):
    """Worker interceptor: ``Worker(..., interceptors=[ActivityHeartbeats()])``."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._outbound = outbound
        super().init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        beating = asyncio.create_task(self._beat())
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()

    async def _beat(self) -> None:
        while True:
            self._outbound.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())
