"""Fake activities with the real ones' names, over a small in-memory model of the AWS side.

Registered in place of the real activities (the samples-python way), they let the workflow's
branches run on the time-skipping server while the tests check the state it leaves behind.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.activities import (
    AlarmsInput,
    CheckHealthInput,
    ConnectionsInput,
    IntegrationChecksInput,
    ReadTaskDefinitionInput,
    RegisterTaskDefinitionInput,
    RouterInput,
    ScaleToZeroInput,
    SetActiveColorInput,
    SetColorVersionInput,
    SetWeightsInput,
    SsmInput,
    SwitchTrafficInput,
    UpdateServiceInput,
)
from models.analysis import MeasureInput, Measurement
from models.colors import COLORS, Color
from models.config import expand_url
from models.observations import (
    AlarmState,
    CheckResult,
    ColorState,
    ConnectionCount,
    HealthObservation,
    RouterWeights,
)

OLD_TASK_DEFINITION = "arn:aws:ecs:us-west-2:123456789012:task-definition/game:1"


@dataclass
class FakeAws:
    """Blue active on version 1 with 2 tasks; green idle. Knobs decide what the checks see."""

    active: Color = "blue"
    versions: dict[Color, str | None] = field(default_factory=lambda: {"blue": "1", "green": None})
    weights: dict[Color, int] = field(default_factory=lambda: {"blue": 100, "green": 0})
    desired: dict[Color, int] = field(default_factory=lambda: {"blue": 2, "green": 0})
    task_definitions: dict[Color, str] = field(
        default_factory=lambda: {"blue": OLD_TASK_DEFINITION, "green": OLD_TASK_DEFINITION}
    )
    revisions: list[str] = field(default_factory=lambda: [OLD_TASK_DEFINITION])
    healthy_after: int | None = 1
    """The check number from which the new color is healthy; None: never."""
    connections: list[int] = field(default_factory=lambda: [0])
    """Counts answered in turn; the last one repeats."""
    checks_pass: bool = True
    failures: dict[str, list[ApplicationError]] = field(default_factory=dict)
    """Activity name → errors its next calls raise, one per call, then it works again."""
    alarms: dict[str, list[str]] = field(default_factory=dict)
    """Alarm name → states answered in turn (OK, ALARM, …); the last one repeats."""
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    """Analysis metric name → values measured in turn (None: no data); the last one repeats."""
    metric_requests: float | None = 1000
    """The request count every measurement reports."""
    calls: list[tuple[str, Any]] = field(default_factory=list)
    splits: list[dict[Color, int]] = field(default_factory=list)
    """Every set of weights the router was given, in order (switches and traffic steps)."""
    alarm_checks: int = 0
    health_checks: int = 0
    connection_checks: int = 0

    def activities(self) -> list[Any]:
        """The fakes, bound to this state, to register on a worker."""
        return [
            self.read_color_state,
            self.read_router_weights,
            self.read_task_definition,
            self.register_task_definition,
            self.update_service,
            self.set_color_version,
            self.check_health,
            self.run_integration_checks,
            self.set_active_color,
            self.switch_traffic,
            self.set_traffic_weights,
            self.notify_reconnect,
            self.count_connections,
            self.scale_to_zero,
            self.read_alarm_states,
            self.measure_metric,
        ]

    def names(self) -> list[str]:
        """The activities called, in order."""
        return [name for name, _ in self.calls]

    def _record(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.failures.get(name):
            raise self.failures[name].pop(0)

    def _require_inactive(self, color: Color) -> None:
        # The real activities refuse this too; a workflow bug must not pass the fakes.
        if color == self.active:
            raise ApplicationError(
                f"refusing to change the active color {color}", non_retryable=True
            )

    @activity.defn(name="read_color_state")
    async def read_color_state(self, arg: SsmInput) -> ColorState:
        self._record("read_color_state", arg)
        return ColorState(active_color=self.active, versions=dict(self.versions))

    @activity.defn(name="read_router_weights")
    async def read_router_weights(self, arg: RouterInput) -> RouterWeights:
        self._record("read_router_weights", arg)
        return RouterWeights(**self.weights)

    @activity.defn(name="read_task_definition")
    async def read_task_definition(self, arg: ReadTaskDefinitionInput) -> str | None:
        self._record("read_task_definition", arg)
        return self.task_definitions[arg.target.color]

    @activity.defn(name="register_task_definition")
    async def register_task_definition(self, arg: RegisterTaskDefinitionInput) -> str:
        self._record("register_task_definition", arg)
        arn = f"arn:aws:ecs:us-west-2:123456789012:task-definition/{arg.task_family}:{arg.image}"
        if arn not in self.revisions:
            self.revisions.append(arn)
        return arn

    @activity.defn(name="update_service")
    async def update_service(self, arg: UpdateServiceInput) -> None:
        self._record("update_service", arg)
        self._require_inactive(arg.target.color)
        self.task_definitions[arg.target.color] = arg.task_definition_arn
        self.desired[arg.target.color] = arg.desired_count

    @activity.defn(name="set_color_version")
    async def set_color_version(self, arg: SetColorVersionInput) -> None:
        self._record("set_color_version", arg)
        self.versions[arg.color] = arg.version

    @activity.defn(name="check_health")
    async def check_health(self, arg: CheckHealthInput) -> HealthObservation:
        self._record("check_health", arg)
        self.health_checks += 1
        color = arg.target.color
        healthy = self.healthy_after is not None and self.health_checks >= self.healthy_after
        desired = self.desired[color]
        return HealthObservation(
            healthy=healthy,
            reason="healthy" if healthy else f"running 0 of {desired}",
            running_count=desired if healthy else 0,
            desired_count=desired,
            pending_count=0 if healthy else desired,
            rollout_state="COMPLETED" if healthy else "IN_PROGRESS",
            task_definition_arn=self.task_definitions[color],
            checked_at=datetime.now(UTC),
        )

    @activity.defn(name="run_integration_checks")
    async def run_integration_checks(self, arg: IntegrationChecksInput) -> list[CheckResult]:
        self._record("run_integration_checks", arg)
        status = 200 if self.checks_pass else 503
        return [
            CheckResult(
                name=check.name,
                url=expand_url(check.url, arg.color_url),
                passed=self.checks_pass,
                status=status,
                detail=f"HTTP {status}",
                elapsed_ms=3,
            )
            for check in arg.checks
        ]

    @activity.defn(name="set_active_color")
    async def set_active_color(self, arg: SetActiveColorInput) -> None:
        self._record("set_active_color", arg)
        self.active = arg.color

    @activity.defn(name="switch_traffic")
    async def switch_traffic(self, arg: SwitchTrafficInput) -> RouterWeights:
        self._record("switch_traffic", arg)
        self.weights = {color: 100 if color == arg.to_color else 0 for color in COLORS}
        self.splits.append(dict(self.weights))
        return RouterWeights(**self.weights)

    @activity.defn(name="set_traffic_weights")
    async def set_traffic_weights(self, arg: SetWeightsInput) -> RouterWeights:
        self._record("set_traffic_weights", arg)
        self.weights = {"blue": arg.weights.blue, "green": arg.weights.green}
        self.splits.append(dict(self.weights))
        return arg.weights

    @activity.defn(name="notify_reconnect")
    async def notify_reconnect(self, arg: ConnectionsInput) -> None:
        self._record("notify_reconnect", arg)

    @activity.defn(name="count_connections")
    async def count_connections(self, arg: ConnectionsInput) -> ConnectionCount:
        self._record("count_connections", arg)
        count = self.connections[min(self.connection_checks, len(self.connections) - 1)]
        self.connection_checks += 1
        return ConnectionCount(version=arg.version, count=count, checked_at=datetime.now(UTC))

    @activity.defn(name="scale_to_zero")
    async def scale_to_zero(self, arg: ScaleToZeroInput) -> None:
        self._record("scale_to_zero", arg)
        self._require_inactive(arg.target.color)
        self.desired[arg.target.color] = 0
        if arg.task_definition_arn:
            self.task_definitions[arg.target.color] = arg.task_definition_arn

    @activity.defn(name="read_alarm_states")
    async def read_alarm_states(self, arg: AlarmsInput) -> list[AlarmState]:
        self._record("read_alarm_states", arg)
        turn = self.alarm_checks
        self.alarm_checks += 1
        missing = [name for name in arg.alarm_names if name not in self.alarms]
        if missing:
            raise ApplicationError(
                f"cloudwatch: no alarm named {', '.join(missing)}",
                type="AlarmNotFound",
                non_retryable=True,
            )
        states = []
        for name in arg.alarm_names:
            answers = self.alarms[name]
            state = answers[min(turn, len(answers) - 1)]
            states.append(AlarmState(name=name, state=state, reason=f"{name} is {state}"))
        return states

    @activity.defn(name="measure_metric")
    async def measure_metric(self, arg: MeasureInput) -> Measurement:
        self._record("measure_metric", arg)
        name = arg.metric.name
        answers = self.metrics[name]
        turn = sum(
            1 for called, a in self.calls if called == "measure_metric" and a.metric.name == name
        )
        value = answers[min(turn - 1, len(answers) - 1)]
        return Measurement(
            metric=name,
            value=value,
            requests=self.metric_requests,
            measured_at=datetime.now(UTC),
            detail="" if value is not None else "the query returned no series",
        )
