"""One operation per service and environment, enforced by Temporal: the lease (workflows/lease.py).

On the dev server, with two in-process workers: one runs every workflow over a FakeAws per
region (operations that end), the other runs the workflows alone, with no activities, so an
operation on its task queue holds its lease at its first activity for as long as a test needs.
client.py's own checks (a running switch, a running deployment) are switched off where a test
is about the server: two operations started at the same moment both get past them.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from cli import deployment_kinds, leases, starting, switching
from cli.workers import WorkerWatch
from models.deployment import DeploymentStatus, Phase, State
from models.errors import RefusedError
from models.messages import ApproveRequest, RollbackRequest
from models.multi_region import MultiRegionRequest
from models.switch import SwitchRequest
from tests import dev_server
from tests.dev_server import WAIT, Server
from tests.factories import ENVIRONMENT, deployment_request, environment
from tests.workflows.regional_fake_aws import RegionalFakeAws
from workflows import ALL_WORKFLOWS
from workflows.deployment import BlueGreenDeployment
from workflows.lease import PATCH, lease_id
from workflows.multi_region import MultiRegionDeployment

QUEUE = f"lease-{uuid.uuid4().hex[:8]}"
"""Served: every workflow and the fake activities."""
IDLE = f"lease-idle-{uuid.uuid4().hex[:8]}"
"""Workflows only: an operation here waits at its first activity, holding its lease."""
REGIONS = environment(
    regions=["us-west-2", "us-east-1"],
    in_region={
        "us-east-1": {
            "blue": {"url": "http://127.0.0.1:28181"},
            "green": {"url": "http://127.0.0.1:28182"},
        }
    },
)
"""Two regions; us-west-2's colors are the one-region environment's, so one fake serves both."""
WATCH = WorkerWatch(WAIT)
Operation = Callable[[Client, str, str], Awaitable[WorkflowHandle[Any, Any]]]
"""Start an operation on game/<environment> on a task queue, as client.py does, and return it
once Temporal has let it run (RefusedError otherwise)."""


@pytest.fixture(scope="module")
async def server(temporal: str) -> AsyncIterator[Server[RegionalFakeAws]]:
    async with (
        dev_server.serving(temporal, RegionalFakeAws.of(REGIONS), QUEUE) as served,
        Worker(served.client, task_queue=IDLE, workflows=ALL_WORKFLOWS),
    ):
        yield served


@pytest.fixture
def aws(server: Server[RegionalFakeAws]) -> RegionalFakeAws:
    """Fresh fakes for the test: blue active on version 1 in both regions."""
    vars(server.aws).update(vars(RegionalFakeAws.of(REGIONS)))
    return server.aws


@pytest.fixture
def server_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    """client.py's own checks switched off: only the server keeps operations apart."""

    async def nothing(*args: Any) -> None:
        return None

    monkeypatch.setattr(starting, "_refuse_while_switching", nothing)
    monkeypatch.setattr(switching, "_refuse_while_deploying", nothing)


async def deploy(client: Client, name: str, queue: str, **overrides: Any) -> Any:
    """client.py deploy of game 2 to environment ``name``, in us-west-2."""
    target = environment(**overrides.pop("target", {}))
    request = deployment_request(target, environment=name, **overrides)
    kind = deployment_kinds.for_request(request)

    def start() -> Awaitable[WorkflowHandle[Any, Any]]:
        return kind.start(client, request, queue)

    return await leases.admitted(client, await start(), start, "game", name, queue, WATCH)


async def deploy_regions(client: Client, name: str, queue: str, **options: Any) -> Any:
    """client.py deploy of game 2 to environment ``name`` in both REGIONS."""
    request = MultiRegionRequest(
        service="game",
        environment=name,
        version="2",
        image="game:2",
        waves=[[REGIONS.for_region(r) for r in wave] for wave in REGIONS.wave_list()],
        **options,
    )
    kind = deployment_kinds.for_request(request)

    def start() -> Awaitable[WorkflowHandle[Any, Any]]:
        return kind.start(client, request, queue)

    return await leases.admitted(client, await start(), start, "game", name, queue, WATCH)


async def switch(client: Client, name: str, queue: str) -> Any:
    """client.py switch on environment ``name``, up to its admission."""
    request = SwitchRequest(service="game", environment=name, target=environment())
    return await switching.start_switch(client, request, queue, WATCH)


async def history_events(handle: WorkflowHandle[Any, Any]) -> list[EventType.ValueType]:
    return [event.event_type for event in (await handle.fetch_history()).events]


async def lease_of(client: Client, name: str) -> tuple[str | None, WorkflowExecutionStatus | None]:
    """The parent (the holder) and the status of environment ``name``'s latest lease."""
    found = await client.get_workflow_handle(lease_id("game", name)).describe()
    return found.parent_id, found.status


async def ended(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait for the end of ``handle``'s run, however it ends."""
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


# --- (a) two at the same moment: exactly one runs ----------------------------------------------

RACES: list[tuple[str, Operation, Operation, int]] = [
    ("deploy-switch", deploy, switch, 16),
    ("switch-deploy", switch, deploy, 16),
    ("regions-switch", deploy_regions, switch, 6),
    ("switch-switch", switch, switch, 8),
    ("deploy-deploy", deploy, deploy, 8),
]
"""Each pair started together this many times, each time on an environment of its own."""


@pytest.mark.timeout(45)
@pytest.mark.usefixtures("server_decides")
async def test_two_operations_started_together_one_runs_and_the_other_is_refused_naming_it(
    server: Server[RegionalFakeAws], temporal: str
) -> None:
    # Two clients, two connections: as two CI jobs started at the same moment.
    first, second = [
        await Client.connect(temporal, data_converter=pydantic_data_converter) for _ in range(2)
    ]
    tries = [(name, a, b, f"{name}-{n}") for name, a, b, count in RACES for n in range(count)]
    assert len(tries) >= 50
    outcomes: dict[str, list[str]] = {}

    async def race(name: str, a: Operation, b: Operation, environment: str) -> None:
        both = await asyncio.gather(
            a(first, environment, IDLE), b(second, environment, IDLE), return_exceptions=True
        )
        runs = [h for h in both if isinstance(h, WorkflowHandle)]
        refusals = [str(e) for e in both if isinstance(e, RefusedError)]
        assert (len(runs), len(refusals)) == (1, 1), both
        [winner], [refusal] = runs, refusals
        try:
            if _id_of(a, environment) == _id_of(b, environment):
                # One ID twice: Temporal refused the second start itself, naming the first.
                assert f" {winner.id} (run {winner.result_run_id})" in refusal, refusal
            else:
                assert refusal.startswith(
                    f"refused: {winner.id} is running for game/{environment};"
                )
            holder, status = await lease_of(server.client, environment)
            assert (holder, status) == (winner.id, WorkflowExecutionStatus.RUNNING)
            # The refused operation's run, if it had an ID of its own, ended having done nothing.
            for loser_id in {_id_of(a, environment), _id_of(b, environment)} - {winner.id}:
                loser = server.client.get_workflow_handle(loser_id)
                await ended(loser)
                assert (await loser.describe()).status == WorkflowExecutionStatus.FAILED
                events = await history_events(loser)
                assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
                assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED in events
                assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED not in events
            outcomes.setdefault(name, []).append(winner.id.split("-")[0])
        finally:
            await winner.terminate("race decided")
            if (await winner.describe()).workflow_type == "MultiRegionDeployment":
                # Its regions, if it got to start them, wait at their first activity too.
                for region in REGIONS.all_regions():
                    await _terminate(server.client.get_workflow_handle(f"{winner.id}-{region}"))

    for batch in range(0, len(tries), 10):
        await asyncio.gather(*(race(*one) for one in tries[batch : batch + 10]))

    assert sum(len(won) for won in outcomes.values()) == len(tries)
    print({name: sorted(won) for name, won in outcomes.items()})


def _id_of(operation: Operation, environment: str) -> str:
    return f"{'switch' if operation is switch else 'deploy'}-game-{environment}"


# --- (b) released when the holder ends ---------------------------------------------------------


async def test_the_lease_is_released_when_a_deployment_succeeds_and_when_a_switch_ends(
    server: Server[RegionalFakeAws], aws: RegionalFakeAws
) -> None:
    client = server.client
    held = await deploy(client, "freed", QUEUE, shutdown_inactive_cluster=False)
    final = await held.result()
    assert final.state == State.SUCCEEDED
    # Released before the deployment closed: the next one is let in at once.
    assert (await lease_of(client, "freed")) == (held.id, WorkflowExecutionStatus.COMPLETED)

    back = await switch(client, "freed", QUEUE)
    result = await back.result()
    assert (result.from_color, result.to_color) == ("green", "blue")
    assert (await lease_of(client, "freed")) == (back.id, WorkflowExecutionStatus.COMPLETED)

    again = await deploy(client, "freed", QUEUE)
    assert (await again.result()).state == State.SUCCEEDED


async def test_the_lease_is_released_when_a_deployment_fails_or_is_rolled_back_or_cancelled(
    server: Server[RegionalFakeAws], aws: RegionalFakeAws
) -> None:
    client = server.client
    aws.regions["us-west-2"].failures["update_service"] = [
        _denied("UpdateService: AccessDenied: denied")
    ]
    failed = await deploy(client, "ends", QUEUE)
    with pytest.raises(WorkflowFailureError):
        await failed.result()
    assert (await lease_of(client, "ends")) == (failed.id, WorkflowExecutionStatus.COMPLETED)

    rolled_back = await deploy(client, "ends", QUEUE, require_approval=True)
    await _in_phase(rolled_back, Phase.AWAITING_APPROVAL)
    await rolled_back.execute_update("rollback", RollbackRequest(reason="bad", by="bob"))
    await ended(rolled_back)
    assert (await lease_of(client, "ends")) == (rolled_back.id, WorkflowExecutionStatus.COMPLETED)

    cancelled = await deploy(client, "ends", QUEUE, require_approval=True)
    await _in_phase(cancelled, Phase.AWAITING_APPROVAL)
    await cancelled.cancel()
    await ended(cancelled)
    assert (await cancelled.describe()).status == WorkflowExecutionStatus.CANCELED
    assert (await lease_of(client, "ends")) == (cancelled.id, WorkflowExecutionStatus.COMPLETED)

    last = await switch(client, "ends", QUEUE)
    await ended(last)


async def test_a_terminated_holder_s_lease_is_ended_by_the_server_and_the_next_one_runs(
    server: Server[RegionalFakeAws], aws: RegionalFakeAws
) -> None:
    client = server.client
    held = await deploy(client, "killed", QUEUE, require_approval=True)
    await _in_phase(held, Phase.AWAITING_APPROVAL)

    await held.terminate("stuck")
    # At once: the client waits the moment it takes the server to end the lease.
    after = await switch(client, "killed", QUEUE)

    assert (await lease_of(client, "killed"))[0] == after.id
    await ended(after)

    async def leases_seen() -> list[tuple[str | None, WorkflowExecutionStatus | None]]:
        query = f'WorkflowId = "{lease_id("game", "killed")}"'
        return [(e.parent_id, e.status) async for e in client.list_workflows(query)]

    await dev_server.wait_for(
        leases_seen,
        lambda seen: (held.id, WorkflowExecutionStatus.TERMINATED) in seen,
        "the terminated deployment's lease terminated",
    )


# --- (c) several regions: one lease ------------------------------------------------------------


async def test_a_multi_region_deployment_holds_one_lease_for_all_its_regions(
    server: Server[RegionalFakeAws], aws: RegionalFakeAws
) -> None:
    client = server.client
    parent = await deploy_regions(client, "wide", QUEUE, require_approval=True)
    await dev_server.wait_for(
        lambda: parent.query(MultiRegionDeployment.status),
        lambda s: all(
            p.status is not None and p.status.phase == Phase.AWAITING_APPROVAL
            for p in s.regions.values()
        ),
        "every region waiting for approval",
    )

    assert (await lease_of(client, "wide")) == (parent.id, WorkflowExecutionStatus.RUNNING)
    with pytest.raises(RefusedError) as refused:
        await switch(client, "wide", QUEUE)
    assert str(refused.value) == (
        f"refused: {parent.id} is running for game/wide; wait for it to end or roll it back"
        f" (client.py rollback {parent.id} --reason …)"
    )
    await parent.execute_update("approve", ApproveRequest(by="alice"))
    final = await parent.result()

    assert final.state == State.SUCCEEDED
    for region in REGIONS.all_regions():
        child = client.get_workflow_handle(f"{parent.id}-{region}")
        events = (await child.fetch_history()).events
        # The regions took no lease of their own, and asked for none (no patch marker).
        assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in [
            e.event_type for e in events
        ]
        assert not [e for e in events if PATCH.encode() in e.SerializeToString()]
    assert (await lease_of(client, "wide")) == (parent.id, WorkflowExecutionStatus.COMPLETED)


# --- (d) client.py: exit 4 and one line --------------------------------------------------------


async def test_client_py_deploy_refused_by_the_server_exits_4_with_one_line_naming_the_holder(
    server: Server[RegionalFakeAws], aws: RegionalFakeAws, tmp_path: Any
) -> None:
    # A switch back started by other means, under another ID: client.py's own check (a running
    # switch-game-<environment>) does not see it; Temporal does.
    client = server.client
    holder = await client.start_workflow(
        "SwitchBack",
        SwitchRequest(service="game", environment="held", target=environment()),
        id="switch-by-hand-game-held",
        task_queue=IDLE,
    )
    try:
        assert await leases.holds_lease(holder, lease_id("game", "held"))
        config = dev_server.write_config(tmp_path / "deploy.toml", {"held": ENVIRONMENT})
        deploy_args = ["--config", str(config), "--environment", "held"]
        deploy_args += ["--version", "2", "--image", "game:2"]
        expected = (
            "client.py: refused: switch-by-hand-game-held is running for game/held;"
            " wait for it to end\n"
        )

        for extra in ([], ["--wait"], ["--json"]):
            done = await dev_server.client_py(server.address, QUEUE, "deploy", *deploy_args, *extra)
            assert (done.returncode, done.stdout, done.stderr) == (4, "", expected), extra

        switched = await dev_server.client_py(
            server.address, QUEUE, "switch", "--config", str(config), "--environment", "held"
        )
        assert (switched.returncode, switched.stdout) == (4, "")
        assert switched.stderr == expected
    finally:
        await holder.terminate("end of test")

    assert aws.regions["us-west-2"].calls == []
    # The refused deployment's run says why it ended.
    status = await server.client.get_workflow_handle("deploy-game-held").query(
        BlueGreenDeployment.status
    )
    assert status.state == State.FAILED and status.report is not None
    assert status.report.error_type == "LeaseHeld"


async def test_client_py_switch_refused_by_the_server_names_the_deployment_and_its_rollback(
    server: Server[RegionalFakeAws], aws: RegionalFakeAws, tmp_path: Any
) -> None:
    client = server.client
    holder = await client.start_workflow(
        MultiRegionDeployment.run,
        MultiRegionRequest(
            service="game",
            environment="busy",
            version="2",
            image="game:2",
            waves=[[REGIONS.for_region("us-west-2")]],
        ),
        id="deploy-by-hand-game-busy",
        task_queue=IDLE,
    )
    try:
        assert await leases.holds_lease(holder, lease_id("game", "busy"))
        config = dev_server.write_config(tmp_path / "deploy.toml", {"busy": ENVIRONMENT})
        done = await dev_server.client_py(
            server.address, QUEUE, "switch", "--config", str(config), "--environment", "busy"
        )
    finally:
        await holder.terminate("end of test")
        for region in ("us-west-2",):
            await dev_server.terminate_running(
                [client.get_workflow_handle(f"deploy-by-hand-game-busy-{region}")]
            )

    assert (done.returncode, done.stdout) == (4, ""), done
    assert done.stderr == (
        "client.py: refused: deploy-by-hand-game-busy is running for game/busy; wait for it to"
        " end or roll it back (client.py rollback deploy-by-hand-game-busy --reason …)\n"
    )
    assert aws.regions["us-west-2"].calls == []


# --- helpers -----------------------------------------------------------------------------------


def _denied(message: str) -> ApplicationError:
    return ApplicationError(message, type="AccessDenied", non_retryable=True)


async def _terminate(handle: WorkflowHandle[Any, Any]) -> None:
    """Terminate ``handle`` if it exists and runs."""
    with contextlib.suppress(RPCError):
        await handle.terminate("end of test")


async def _in_phase(handle: WorkflowHandle[Any, Any], phase: Phase) -> DeploymentStatus:
    return await dev_server.wait_for(
        lambda: handle.query(BlueGreenDeployment.status),
        lambda status: status.phase == phase,
        f"{handle.id} in {phase.value}",
    )
