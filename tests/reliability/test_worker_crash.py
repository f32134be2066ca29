"""The worker killed (SIGKILL) in each phase of a deployment: a new worker finishes it, leaving
the same AWS state as an undisturbed run, and no change made twice with different values.

Every case is a real deployment of version 2 over version 1 (``worker.py`` on the Temporal dev
server, moto as AWS, the sample game servers), each with its own service in moto, task queue and
workers, all at once: the module takes about as long as its slowest case. One of them, the
baseline, is not disturbed. In the others the status query is watched until the deployment is
in the case's phase, the worker is killed, a new one is started, and the deployment must end as
the baseline did.

Short phases are held, so that the kill lands in them for sure, by a proxy between the workers
and moto that lets a chosen call through and holds back its answer (a ``hold`` rule of
``fault_proxy.FaultProxy``):
the activity is killed after AWS made its change and before it could report it. Workers
heartbeat their running activities (``runtime/heartbeats.py``), so Temporal retries such an
activity on the new worker once its heartbeat timeout (10 s) has passed, not its 60 s
start-to-close timeout; each case measures the time from the kill to the deployment's end. The
retry must see the change already made and not make it again (no second task-definition
revision, no second switch). The other phases are waits the workflow already
has: for health (the new color's targets are kept out of its target group until the new worker
runs), for approval (``require_approval``), the bake's timer, and the drain (a player stays on
the old color until the new worker runs). There the worker is killed as soon as the status
shows the phase, wherever the wait is: on a timer, which the new worker resumes at once, or in
a check, which is read-only and retried after the heartbeat timeout. Only the phase and the AWS state are
looked at, never how the workflow waits (a child workflow or not).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from cli.deployment_kinds import start
from cli.deployments import handle_for
from local.aws_resources import DemoResources
from local.processes import free_port, game_server, log_path, temporal_dev_server
from models.deployment import DeploymentStatus, Phase, State
from models.messages import ApproveRequest
from tests.reliability.fault_proxy import Call, FaultProxy, Rule
from tests.reliability.harness import (
    EXPECTED_CHANGES,
    EXPECTED_STATE,
    Change,
    Handle,
    LoggedCalls,
    calls_made,
    changes,
    collapsed,
    demo_environment,
    deployment_request,
    join,
    kill,
    leave,
    logged_calls,
    polling,
    retried_activities,
    snapshot,
    until,
    worker_env,
    worker_process,
)
from workflows.deployment import BlueGreenDeployment
from workflows.options import CALL_TIMEOUT
from workflows.search_attributes import REGISTRATIONS

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import TargetDescriptionTypeDef

pytestmark = pytest.mark.timeout(300)
"""The module's fixture runs every case (within PHASE_TIMEOUT and RESULT_TIMEOUT), in the time
limit of its first test."""
RESULT_TIMEOUT = 180.0
"""Seconds a case waits for its deployment to end: without heartbeats, a retried activity
alone took 60 s."""
PHASE_TIMEOUT = 90.0
"""Seconds a case waits to reach its phase: ten workers start at once on two CPUs."""
ORDER = list(Phase)
BAKE = timedelta(seconds=15)
"""The bake of the case killed in it; the others bake for the demo's 3 s."""


@dataclass(frozen=True)
class Case:
    """Where the worker is killed, and what holds the deployment there until it is."""

    name: str
    """Part of the service's name in moto: short, letters and hyphens."""
    phase: Phase | None
    """None: the undisturbed baseline."""
    hold: Rule | None = None
    """The AWS call whose answer is held back until the worker has been killed."""
    retried: str | None = None
    """The activity the kill interrupts, which the new worker must run again."""

    @property
    def holds_an_answer(self) -> bool:
        """Whether the kill waits for a held answer: then it lands inside an activity."""
        return self.hold is not None or self.phase == Phase.TESTING


CASES = [
    Case("baseline", None),
    Case("setup", Phase.SETTING_UP, Rule("ssm.GetParameters", "hold"), "read_color_state"),
    Case(
        "deploy",
        Phase.DEPLOYING,
        Rule("ecs.RegisterTaskDefinition", "hold"),
        "register_task_definition",
    ),
    Case("health", Phase.WAITING_FOR_HEALTH),
    # Held by a proxy in front of the new color's game server (GET /health), not moto.
    Case("testing", Phase.TESTING, retried="run_integration_checks"),
    Case("approval", Phase.AWAITING_APPROVAL),
    Case("switch", Phase.SWITCHING, Rule("elbv2.ModifyListener", "hold"), "switch_traffic"),
    Case("bake", Phase.BAKING),
    Case("drain", Phase.DRAINING),
    Case(
        "cleanup",
        Phase.CLEANING_UP,
        Rule("ecs.UpdateService", "hold", params={"desiredCount": 0}),
        "scale_to_zero",
    ),
]
KILLED = [case for case in CASES if case.phase is not None]


@dataclass
class World:
    """What every case shares: one dev server, one moto, the game servers."""

    address: str
    client: Client
    moto_url: str
    blue_url: str
    """Blue's game server, nobody connected: the drain ends at its first check."""
    green_url: str
    drain_blue_url: str
    """Blue's game server for the drain case alone: its player keeps the drain going."""
    config_dir: Path
    run: str
    past_the_kill: dict[str, asyncio.Event] = field(default_factory=dict)
    """Per case: set once its first worker was killed (or the case failed before that)."""


@dataclass
class Outcome:
    """How one case went."""

    resources: DemoResources
    final: DeploymentStatus
    killed_in: DeploymentStatus | None
    """The status the kill was decided on."""
    calls: list[Call]
    """Every AWS call that reached moto, from both workers."""
    logged: LoggedCalls
    retried: list[str]
    snapshot: dict[str, Any]
    seconds: float
    recovered: float | None
    """Seconds from the kill to the deployment's end; None for the baseline."""
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        """The changes asked of AWS, in order, repeats included."""
        return changes(self.calls, self.resources)


@pytest.fixture(scope="module")
async def outcomes(
    aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Outcome | BaseException]]:
    """Run every case at once; each case's outcome, or what went wrong in it."""
    with ExitStack() as stack:
        address = stack.enter_context(
            temporal_dev_server(free_port(), None, search_attributes=REGISTRATIONS)
        )
        world = World(
            address=address,
            client=await Client.connect(address, data_converter=pydantic_data_converter),
            moto_url=aws["AWS_ENDPOINT_URL"],
            blue_url=stack.enter_context(game_server(free_port(), "blue", "1")),
            green_url=stack.enter_context(game_server(free_port(), "green", "2")),
            # The draining case's own: its player stays, told to reconnect or not, until the
            # case lets it go.
            drain_blue_url=stack.enter_context(game_server(free_port(), "blue", "1")),
            config_dir=tmp_path_factory.mktemp("crash"),
            run=uuid.uuid4().hex[:4],
        )
        # The cases killed inside an activity wait for its retry: they start first, and the
        # others start once those are killed, so as to run during that wait instead of slowing
        # down every worker's start on a small machine.
        first = [case for case in CASES if case.holds_an_answer]
        world.past_the_kill.update({case.name: asyncio.Event() for case in first})
        tasks = {case.name: asyncio.create_task(run_case(world, case)) for case in first}
        # Bounded, and without raising: a case stuck on its way is reported by its own test.
        waits = [asyncio.create_task(event.wait()) for event in world.past_the_kill.values()]
        await asyncio.wait(waits, timeout=PHASE_TIMEOUT)
        for wait in waits:
            wait.cancel()
        tasks |= {
            case.name: asyncio.create_task(run_case(world, case))
            for case in CASES
            if not case.holds_an_answer
        }
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        found = {case.name: results[list(tasks).index(case.name)] for case in CASES}
        for name, result in found.items():
            if isinstance(result, Outcome):
                # What pytest -s shows: where each case spent its time and what it repeated.
                repeated = [c for i, c in enumerate(result.changes[1:]) if result.changes[i] == c]
                recovered = (
                    "" if result.recovered is None else f" recovered in {result.recovered:.1f}s;"
                )
                print(
                    f"{name}: {result.seconds:.1f}s;{recovered} {'; '.join(result.notes)};"
                    f" activities retried: {result.retried}; changes repeated: {repeated}"
                )
        yield found


async def run_case(world: World, case: Case) -> Outcome:
    """Deploy, kill the worker in ``case.phase`` (unless baseline), finish on a new worker."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    service = f"wc{world.run}-{case.name}"
    names = [f"reliability-crash-{case.name}-worker-{n}" for n in (1, 2)]
    stack = ExitStack()
    notes: list[str] = []
    try:
        proxy = stack.enter_context(FaultProxy(world.moto_url))
        if case.hold is not None:
            proxy.add(case.hold)
        # The testing case holds the integration check, which goes to the new color's URL.
        green = stack.enter_context(FaultProxy(world.green_url))
        if case.phase == Phase.TESTING:
            green.add(Rule("GET /health", "hold"))
        blue_url = world.drain_blue_url if case.phase == Phase.DRAINING else world.blue_url
        resources, env = await asyncio.to_thread(
            demo_environment, world.config_dir, service, blue_url, green.url
        )
        resume = await held_until_killed(case, resources, blue_url)
        if case.phase == Phase.BAKING:
            # Long enough to be seen in a status query on a busy machine, however slow; the
            # bake's length changes nothing in the state the deployment leaves.
            env = env.model_copy(update={"bake": env.bake.model_copy(update={"duration": BAKE})})

        variables = worker_env(world.address, service, proxy.url)
        first = stack.enter_context(worker_process(names[0], variables))
        request = deployment_request(service, env, case.phase == Phase.AWAITING_APPROVAL)
        started = await start(world.client, request, service)
        handle = handle_for(world.client, started.id)
        await polling(first, names[0])

        killed_in, killed_at = None, None
        if case.phase is not None:
            holder = green if case.phase == Phase.TESTING else proxy
            killed_in = await reach(handle, case, holder if case.holds_an_answer else None)
            kill(first)
            killed_at = loop.time()
            world.past_the_kill.get(case.name, asyncio.Event()).set()
            proxy.release()
            green.release()
            second = stack.enter_context(worker_process(names[1], variables))
            await polling(second, names[1])
            notes.append(
                f"killed at {killed_at - began:.1f}s, new worker at {loop.time() - began:.1f}s"
            )
            await resume(handle)

        final = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        ended = loop.time()
        seconds = ended - began
        return Outcome(
            resources=resources,
            final=final,
            killed_in=killed_in,
            calls=proxy.calls,
            logged=logged_calls([log_path(n) for n in names], handle.id),
            retried=await retried_activities(world.client, handle.id),
            snapshot=await asyncio.to_thread(snapshot, env, resources),
            seconds=seconds,
            recovered=None if killed_at is None else ended - killed_at,
            notes=notes,
        )
    finally:
        world.past_the_kill.get(case.name, asyncio.Event()).set()
        # Stopping workers blocks for up to seconds: not on the loop the other cases run on.
        await asyncio.to_thread(stack.close)


async def held_until_killed(
    case: Case, resources: DemoResources, blue_url: str
) -> Callable[[Handle], Awaitable[None]]:
    """Make the waits of ``case.phase`` last until the worker is killed; what ends them."""
    if case.phase == Phase.WAITING_FOR_HEALTH:
        # moto reports every registered target healthy: none registered, none healthy.
        elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=resources.region)
        group = resources.target_group_arns["green"]
        found = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        targets: list[TargetDescriptionTypeDef] = [
            {"Id": t["Target"]["Id"], "Port": t["Target"].get("Port", 80)} for t in found
        ]
        elbv2.deregister_targets(TargetGroupArn=group, Targets=targets)

        async def healthy(_: Handle) -> None:
            elbv2.register_targets(TargetGroupArn=group, Targets=targets)

        return healthy
    if case.phase == Phase.AWAITING_APPROVAL:

        async def approve(handle: Handle) -> None:
            await handle.execute_update(
                BlueGreenDeployment.approve,
                ApproveRequest(by="tests/reliability", comment="after the worker was killed"),
            )

        return approve
    if case.phase == Phase.DRAINING:
        player = join(blue_url, "1")

        async def gone(_: Handle) -> None:
            leave(player)

        return gone

    async def nothing(_: Handle) -> None:
        pass

    return nothing


async def reach(handle: Handle, case: Case, holder: FaultProxy | None) -> DeploymentStatus:
    """Ask ``status`` until the deployment is in ``case.phase`` (and, where an answer is held,
    that answer is being held); the status seen then."""
    assert case.phase is not None
    phase = case.phase
    seen: list[DeploymentStatus] = []

    async def there() -> bool:
        if holder is not None and not holder.held.is_set():
            return False
        try:
            status = await handle.query(BlueGreenDeployment.status)
        except (RPCError, WorkflowQueryFailedError):
            return False  # no workflow task completed yet
        if status.state != State.RUNNING or ORDER.index(status.phase) > ORDER.index(phase):
            raise AssertionError(f"{handle.id} went past {phase.value}: {status.phase.value}")
        seen.append(status)
        return status.phase == phase

    await until(there, PHASE_TIMEOUT, f"{handle.id} in {phase.value}", interval=0.05)
    return seen[-1]


def outcome_of(outcomes: dict[str, Outcome | BaseException], name: str) -> Outcome:
    """The case's outcome; its error re-raised when it went wrong."""
    result = outcomes[name]
    if isinstance(result, BaseException):
        raise result
    return result


def test_the_cases_cover_every_phase_before_the_end() -> None:
    assert {case.phase for case in KILLED} == set(Phase) - {Phase.COMPENSATING, Phase.DONE}


def test_the_undisturbed_run_asks_for_each_change_once(
    outcomes: dict[str, Outcome | BaseException],
) -> None:
    baseline = outcome_of(outcomes, "baseline")

    assert baseline.final.state == State.SUCCEEDED
    assert baseline.changes == EXPECTED_CHANGES
    assert baseline.retried == []
    assert baseline.snapshot == EXPECTED_STATE
    # The worker's log says what the proxy saw: every change logged once.
    assert {
        step: baseline.logged.answered[step] for step in calls_made(baseline.calls)
    } == calls_made(baseline.calls)


@pytest.mark.parametrize("case", KILLED, ids=[case.name for case in KILLED])
def test_a_new_worker_finishes_a_deployment_whose_worker_was_killed(
    outcomes: dict[str, Outcome | BaseException], case: Case
) -> None:
    outcome, baseline = outcome_of(outcomes, case.name), outcome_of(outcomes, "baseline")
    assert outcome.killed_in is not None and case.phase is not None

    assert outcome.killed_in.phase == case.phase
    assert outcome.final.state == State.SUCCEEDED, outcome.final.report
    # The same phases as the baseline (which asks for no approval), each entered once.
    assert [e.phase for e in outcome.final.phases if e.phase != Phase.AWAITING_APPROVAL] == [
        e.phase for e in baseline.final.phases
    ]
    assert outcome.snapshot == baseline.snapshot
    # The same changes in the same order; a retry may repeat the change it was interrupted in,
    # with the same values, right after it: once at most.
    assert collapsed(outcome.changes) == EXPECTED_CHANGES
    assert len(outcome.changes) - len(EXPECTED_CHANGES) <= 1, outcome.changes
    # One revision for the new image, one switch of the weights.
    assert outcome.changes.count(EXPECTED_CHANGES[0]) == 1
    assert [c for c in outcome.changes if c[0] == "weights"] == [("weights", "blue 0", "green 100")]
    # The logs of both workers agree with what reached moto, less the one call whose answer
    # was held back from the killed worker.
    for step, count in calls_made(outcome.calls).items():
        assert count - outcome.logged.answered[step] in (0, 1), (step, outcome.logged)
    if case.retried is not None:
        assert case.retried in outcome.retried
    if case.holds_an_answer:
        # Retried after the heartbeat timeout, not the 60 s start-to-close timeout.
        assert outcome.recovered is not None and outcome.recovered < CALL_TIMEOUT.total_seconds()
