"""Judging the new color while it has traffic, beside the sequence: each analysis metric from
the first traffic on through the bake, and the alarms during traffic steps (the bake watches
them itself), each on its own loop.

A loop that finds a reason to roll back records it as ``failure`` and ends; the deployment
treats a failure like a rollback request: its next safe point stops it and all traffic goes
back to the old color first. No data is never a pass: a step, or the bake, ends only once every
metric's latest measurement (taken after the step began) passed.
"""

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import analysis
    from activities.analysis import QUERY_ERROR
    from models.activities import AlarmsInput
    from models.analysis import AnalysisMetric, MeasureInput, MetricResult, MetricTally, judge
    from models.colors import Color
    from models.config import EnvironmentConfig
    from models.deployment import DeploymentStatus
    from models.durations import format_duration
    from workflows.calls import Calls, Interrupted, StepFailed
    from workflows.options import MEASURE_RETRY
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
        self._metric_loops: list[asyncio.Task[None]] = []
        self._marks: dict[str, int] = {}
        self.failure: StepFailed | None = None
        """Why the new color must not keep its traffic; None while nothing says so."""

    def watch_metrics(self, env: EnvironmentConfig, color: Color) -> None:
        """Measure each of ``env``'s analysis metrics of ``color`` every interval, over no more
        than the time since now (its first traffic), until ``stop``; once started, a second
        call changes nothing."""
        if self._metric_loops:
            return
        for metric in env.analysis.metrics:
            tally = MetricTally.of(metric)
            self._status.analysis.append(tally)
            # What the color served before this deployment's traffic is not judged.
            request = MeasureInput.of(env, metric, color).model_copy(
                update={"not_before": workflow.now()}
            )
            self._metric_loops.append(self._start(self._measure(metric, request, tally)))

    def mark(self) -> None:
        """From now on only new measurements count for ``until_passing`` (a step began)."""
        self._marks = {tally.metric: tally.measurements for tally in self._status.analysis}

    async def until_passing(self) -> None:
        """Hold on until every metric was measured since ``mark`` and its latest measurement
        passed; the analysis failing, or a rollback, ends the wait at once (Interrupted)."""
        if not self._status.analysis:
            return
        await workflow.wait_condition(lambda: self._passing() or self._calls.interrupted())
        self._calls.raise_if_interrupted()

    async def stop(self) -> None:
        """End every loop: the judging is over (the bake passed, or the deployment is ending)."""
        loops, self._metric_loops = self._metric_loops, []
        for loop in [*loops, self._alarm_loop]:
            await _stopped(loop)
        self._alarm_loop = None

    def _passing(self) -> bool:
        return all(
            tally.measurements > self._marks.get(tally.metric, 0)
            and tally.last is not None
            and tally.last.verdict == "passed"
            for tally in self._status.analysis
        )

    async def _measure(
        self, metric: AnalysisMetric, request: MeasureInput, tally: MetricTally
    ) -> None:
        every = format_duration(metric.interval)
        while True:
            tally.add(await self._measured(metric, request))
            self._on_change()
            reason = tally.verdict_reason()
            if reason:
                self._fail(StepFailed(f"analysis: {reason}", "AnalysisFailed"))
                return
            await self._calls.pause(metric.interval, f"next {metric.name} measurement in {every}")

    async def _measured(self, metric: AnalysisMetric, request: MeasureInput) -> MetricResult:
        """One measurement, judged; one that could not be read is inconclusive, not a pass."""
        try:
            seen = await self._calls.activity(
                analysis.measure_metric,
                request,
                summary=f"measure {metric.name} of {request.color} ({metric.provider})",
                retry=MEASURE_RETRY,
                read_only=True,
            )
        except StepFailed as failure:
            if failure.error_type == QUERY_ERROR:
                raise  # the query itself is wrong: no later measurement can pass
            return MetricResult(
                metric=metric.name,
                verdict="inconclusive",
                value=None,
                requests=None,
                measured_at=workflow.now(),
                reason=f"{metric.name}: not measured: {failure.reason} (inconclusive)",
            )
        return judge(metric, seen)

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
