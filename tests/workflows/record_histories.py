"""Record the histories the replay test replays: ``python -m tests.workflows.record_histories``.

Without arguments only scenarios that have no history yet are recorded: the histories already
here were made by earlier versions of the workflows, and replaying them is what proves that
deployments started by those versions still run on the current code. Re-record one on purpose
(``… record_histories NAME``, which replaces all of its files) only when the runs it stands for
can no longer be open: when a ``workflow.patched`` guard becomes ``workflow.deprecate_patch``,
or is removed (docs/workflow-changes.md).
"""

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.common import TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, Phase
from models.messages import ApproveRequest, RollbackRequest
from models.multi_region import MultiRegionRequest
from models.switch import SwitchRequest
from runtime.process_exit import exit_now
from tests.factories import deployment_request, environment
from tests.notifying import FakeNotifications, notify_tables
from tests.workflows.conftest import TEST_SERVER, register_search_attributes
from tests.workflows.driving import Fakes, running_worker, wait_for_phase
from tests.workflows.fake_aws import FakeAws
from tests.workflows.regional_fake_aws import RegionalFakeAws
from workflows import ALL_WORKFLOWS, search_attributes
from workflows.deployment import BlueGreenDeployment
from workflows.lease import lease_id
from workflows.long_wait import CHECKS_PER_RUN, INLINE_CHECKS
from workflows.multi_region import MultiRegionDeployment
from workflows.switch_back import SwitchBack

HISTORIES = Path(__file__).parent / "histories"
CHILD = "--"
"""``<scenario>--<region>.json`` is a child of a multi-region scenario (ID ``…-<region>``)."""
BAKE = {"duration": "10m", "poll_interval": "1m", "alarms": ["game-5xx"]}
# Long enough to move to a child after INLINE_CHECKS checks, and to continue as new there.
LONG_BAKE = {"duration": "1h", "poll_interval": "15s", "alarms": ["game-5xx"]}
LONG_DRAIN = {"timeout": "48h", "poll_interval": "30s"}
SHORT_HEALTH = {"timeout": "5m", "poll_interval": "15s"}
CANARY = {"strategy": "canary", "percent": 10, "pause": "2m"}
ANALYSIS = {
    "prometheus_url": "http://prometheus:9090",
    "metrics": [
        {
            "name": "error-rate",
            "provider": "prometheus",
            "query": 'sum(rate(errors{color="{color}"}[{window}]))',
            "max": 0.05,
            "interval": "30s",
            "inconclusive_limit": 3,
        }
    ],
}
# Two waves over three regions; each region's colors have their own URLs.
IN_REGION: dict[str, dict[str, Any]] = {
    region: {
        "blue": {"url": f"http://127.0.0.1:{port}1"},
        "green": {"url": f"http://127.0.0.1:{port}2"},
    }
    for region, port in (("us-east-1", 2808), ("eu-west-1", 3808))
}
REGIONS = environment(
    waves=[["us-west-2"], ["us-east-1", "eu-west-1"]], in_region=IN_REGION, bake={"duration": "5m"}
)
# The same, eu-west-1 leaving the switch-together gate on its own after 30 s.
PROCEEDING = {"approval": {"timeout": "30s", "on_timeout": "proceed"}}
REGIONS_EU_PROCEEDING = environment(
    waves=[["us-west-2"], ["us-east-1", "eu-west-1"]],
    in_region=IN_REGION | {"eu-west-1": IN_REGION["eu-west-1"] | PROCEEDING},
    bake={"duration": "5m"},
)


# REGIONS notifying Slack and a webhook; eu-west-1's health gives up after 2 minutes, while
# us-east-1 is still baking.
NOTIFYING_REGIONS = environment(
    **REGIONS.model_dump(include={"waves", "bake"}),
    in_region={
        **REGIONS.in_region,
        "eu-west-1": {**REGIONS.in_region["eu-west-1"], "health": {"timeout": "2m"}},
    },
    notify=notify_tables(),
)


def multi_region_request(
    regions: EnvironmentConfig = REGIONS, **options: Any
) -> MultiRegionRequest:
    """game 2 to prod in the three ``regions``."""
    return MultiRegionRequest(
        service="game",
        environment="prod",
        version="2",
        image="game:2",
        waves=[[regions.for_region(r) for r in wave] for wave in regions.wave_list()],
        **options,
    )


@dataclass
class Scenario:
    """A workflow run with fake AWS, and the signals sent to it when it reaches a phase."""

    aws: Fakes
    arg: BaseModel = field(default_factory=deployment_request)
    signals: list[tuple[Phase, str, BaseModel]] = field(default_factory=list)
    signal_after: timedelta | None = None
    """Let this much time pass in the phase before signalling (to reach a wait's child)."""
    held_by: BaseModel | None = None
    """An operation on the same service and environment started first, under another ID, on a
    worker without activities: it holds the lease (waiting at its first activity) meanwhile."""


def scenarios() -> dict[str, Scenario]:
    """One history per path through the workflows that running executions may be on."""
    denied = ApplicationError(
        "ModifyListener: AccessDenied: denied", type="AccessDenied", non_retryable=True
    )
    return {
        "succeeded_after_drain": Scenario(FakeAws(connections=[3, 1, 0])),
        # Short enough to time out inline, before INLINE_CHECKS checks.
        "failed_health_timeout": Scenario(
            FakeAws(healthy_after=None),
            deployment_request(environment(health=SHORT_HEALTH)),
        ),
        "failed_after_switch_restored": Scenario(FakeAws(failures={"switch_traffic": [denied]})),
        "approved_baked_drained": Scenario(
            FakeAws(connections=[2, 0], alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=BAKE), require_approval=True),
            [(Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="alice", comment="ok"))],
        ),
        "rolled_back_in_bake": Scenario(
            FakeAws(alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=BAKE)),
            [(Phase.BAKING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
        ),
        "alarm_rolled_back": Scenario(
            FakeAws(alarms={"game-5xx": ["OK", "OK", "ALARM"]}),
            deployment_request(environment(bake=BAKE)),
        ),
        "approval_timed_out": Scenario(
            FakeAws(), deployment_request(environment(), require_approval=True)
        ),
        "switched_back": Scenario(
            FakeAws(
                active="green",
                versions={"blue": "1", "green": "2"},
                weights={"blue": 0, "green": 100},
                desired={"blue": 2, "green": 2},
            ),
            SwitchRequest(service="game", environment="prod", target=environment()),
        ),
        "multi_region_approved_in_waves": Scenario(
            RegionalFakeAws.of(REGIONS),
            multi_region_request(require_approval=True, switch_together=True),
            [(Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="alice"))],
        ),
        "multi_region_rolled_back_in_bake": Scenario(
            RegionalFakeAws.of(REGIONS),
            multi_region_request(),
            [(Phase.BAKING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
        ),
        "multi_region_fail_fast": Scenario(
            RegionalFakeAws.of(REGIONS, eu_west_1=FakeAws(healthy_after=None)),
            multi_region_request(),
        ),
        # Started as client.py starts them on a namespace with the BlueGreen* search
        # attributes: the workflows upsert phase and state as they go.
        "approved_with_search_attributes": Scenario(
            FakeAws(connections=[2, 0], alarms={"game-5xx": ["OK"]}),
            deployment_request(
                environment(bake=BAKE), require_approval=True, search_attributes=True
            ),
            [(Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="alice", comment="ok"))],
        ),
        # The waits that move to a child workflow after INLINE_CHECKS checks: one run, a run per
        # CHECKS_PER_RUN checks, a rollback cancelling one.
        "drained_in_child": Scenario(FakeAws(connections=[3] * (INLINE_CHECKS + 5) + [0])),
        "health_timed_out_in_child": Scenario(FakeAws(healthy_after=None)),
        "drain_continued_as_new": Scenario(
            FakeAws(connections=[5] * (INLINE_CHECKS + CHECKS_PER_RUN + 10) + [0]),
            deployment_request(environment(drain=LONG_DRAIN)),
        ),
        "rolled_back_in_drain": Scenario(
            FakeAws(connections=[4]),
            deployment_request(environment(drain=LONG_DRAIN)),
            [(Phase.DRAINING, "rollback", RollbackRequest(reason="lag", by="bob"))],
            signal_after=timedelta(hours=1),
        ),
        "baked_in_child": Scenario(
            FakeAws(connections=[2, 0], alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=LONG_BAKE)),
        ),
        "alarm_fired_in_child": Scenario(
            FakeAws(alarms={"game-5xx": ["OK"] * (INLINE_CHECKS + 10) + ["ALARM"]}),
            deployment_request(environment(bake=LONG_BAKE)),
        ),
        "rolled_back_in_bake_child": Scenario(
            FakeAws(alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=LONG_BAKE)),
            [(Phase.BAKING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
            signal_after=timedelta(minutes=30),
        ),
        "multi_region_approved_with_search_attributes": Scenario(
            RegionalFakeAws.of(REGIONS),
            multi_region_request(require_approval=True, search_attributes=True),
            [(Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="alice"))],
        ),
        # The restore-task-definition patch's new branch: green's task definition read before
        # deploying, and put back as it is scaled to zero, before and after the switch.
        "task_definition_restored_before_switch": Scenario(
            FakeAws(healthy_after=None),
            deployment_request(environment(health=SHORT_HEALTH)),
        ),
        "task_definition_restored_after_switch": Scenario(
            FakeAws(alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=BAKE)),
            [(Phase.BAKING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
        ),
        # Four eyes: the starter's approval refused (a warning), another person's taken.
        "four_eyes_refused_then_approved": Scenario(
            FakeAws(connections=[0]),
            deployment_request(
                environment(approval={"require_different_approver": True}),
                require_approval=True,
                requested_by="alice",
            ),
            [
                (Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="alice")),
                (Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="bob", comment="ok")),
            ],
        ),
        # Notifications (workflows/notifications.py): awaiting approval, switched, succeeded;
        # every attempt failing, so warnings, through a rollback in the bake; several regions,
        # one of them failing while another bakes (a message of its own), without fail fast.
        "notified_approved_and_succeeded": Scenario(
            FakeNotifications(FakeAws(connections=[0])),
            deployment_request(environment(notify=notify_tables()), require_approval=True),
            [(Phase.AWAITING_APPROVAL, "approve", ApproveRequest(by="alice", comment="ok"))],
        ),
        "notified_undelivered_rolled_back_in_bake": Scenario(
            FakeNotifications(FakeAws(alarms={"game-5xx": ["OK"]}), failing=True),
            deployment_request(environment(bake=BAKE, notify=notify_tables())),
            [(Phase.BAKING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
        ),
        "multi_region_notified_region_failed": Scenario(
            FakeNotifications(
                RegionalFakeAws.of(NOTIFYING_REGIONS, eu_west_1=FakeAws(healthy_after=None))
            ),
            multi_region_request(NOTIFYING_REGIONS, fail_fast=False),
        ),
        # Traffic steps: a split per step, each held on a timer or for an approval, the alarms
        # read beside them.
        "linear_steps_baked": Scenario(
            FakeAws(connections=[1, 0], alarms={"game-5xx": ["OK"]}),
            deployment_request(
                environment(bake=BAKE, traffic={"strategy": "linear", "percent": 30, "pause": "2m"})
            ),
        ),
        "canary_alarm_rolled_back_at_step": Scenario(
            FakeAws(alarms={"game-5xx": ["OK", "OK", "ALARM"]}),
            deployment_request(
                environment(bake=BAKE, traffic={"strategy": "ECSCanary10Percent15Minutes"})
            ),
        ),
        "steps_rolled_back": Scenario(
            FakeAws(),
            deployment_request(
                environment(traffic={"strategy": "steps", "steps": [10, 50, 100], "pause": "10m"})
            ),
            [(Phase.SWITCHING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
        ),
        "step_approval_timed_out_proceeded": Scenario(
            FakeAws(),
            deployment_request(
                environment(
                    approval={"timeout": "1h", "on_timeout": "proceed"},
                    traffic={"strategy": "canary", "percent": 5, "pause": "1m", "approve_at": [5]},
                )
            ),
        ),
        # Metric analysis: measured from the first step through the bake, a step ending only
        # after a pass; a failed measurement rolls back.
        "canary_analysis_passed": Scenario(
            FakeAws(metrics={"error-rate": [None, 0.01]}, alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=BAKE, traffic=CANARY, analysis=ANALYSIS)),
        ),
        "canary_analysis_rolled_back": Scenario(
            FakeAws(metrics={"error-rate": [0.01, 0.3]}),
            deployment_request(environment(traffic=CANARY, analysis=ANALYSIS)),
        ),
        # The environment-lease patch's new branch: each top-level operation holds the lease on
        # game/prod from its start, releases it as it ends (after a rollback's restore too), and
        # is refused, having done nothing, while another operation holds it.
        "leased_deployment_succeeded": Scenario(FakeAws(connections=[2, 0])),
        "leased_deployment_rolled_back_in_bake": Scenario(
            FakeAws(alarms={"game-5xx": ["OK"]}),
            deployment_request(environment(bake=BAKE)),
            [(Phase.BAKING, "rollback", RollbackRequest(reason="desyncs", by="bob"))],
        ),
        "leased_switched_back": Scenario(
            FakeAws(
                active="green",
                versions={"blue": "1", "green": "2"},
                weights={"blue": 0, "green": 100},
                desired={"blue": 2, "green": 2},
            ),
            SwitchRequest(service="game", environment="prod", target=environment()),
        ),
        "leased_multi_region_in_waves": Scenario(
            RegionalFakeAws.of(REGIONS), multi_region_request()
        ),
        # eu-west-1's gate times out and it switches on its own; us-east-1, healthy a minute
        # later, then switches at once, not once eu-west-1 has ended (the
        # switch-together-past-the-gate patch).
        "multi_region_released_past_the_gate": Scenario(
            RegionalFakeAws.of(REGIONS_EU_PROCEEDING, us_east_1=FakeAws(healthy_after=5)),
            multi_region_request(REGIONS_EU_PROCEEDING, switch_together=True),
        ),
        "deployment_refused_by_lease": Scenario(
            FakeAws(),
            held_by=SwitchRequest(service="game", environment="prod", target=environment()),
        ),
        "multi_region_refused_by_lease": Scenario(
            RegionalFakeAws.of(REGIONS), multi_region_request(), held_by=deployment_request()
        ),
        "switch_refused_by_lease": Scenario(
            FakeAws(),
            SwitchRequest(service="game", environment="prod", target=environment()),
            held_by=deployment_request(),
        ),
    }


def _workflow_of(arg: BaseModel) -> Any:
    """The workflow a scenario's argument starts."""
    return {
        SwitchRequest: SwitchBack.run,
        MultiRegionRequest: MultiRegionDeployment.run,
    }.get(type(arg), BlueGreenDeployment.run)


def start_search_attributes(arg: BaseModel) -> TypedSearchAttributes | None:
    """What client.py sets at start for ``arg``: nothing unless it asks for search attributes."""
    if isinstance(arg, MultiRegionRequest) and arg.search_attributes:
        regions = arg.regions()
    elif isinstance(arg, DeploymentRequest) and arg.search_attributes:
        regions = [arg.target.region]
    else:
        return None
    return search_attributes.at_start(arg.service, arg.environment, arg.version, regions)


async def record_one(env: WorkflowEnvironment, name: str, scenario: Scenario) -> None:
    """Run one scenario to its end and write its histories to ``histories/<name>[--…].json``,
    in place of those it had: a child or a run it no longer has must not stay behind."""
    for old in [HISTORIES / f"{name}.json", *HISTORIES.glob(f"{name}{CHILD}*.json")]:
        old.unlink(missing_ok=True)
    client = env.client
    async with (
        running_worker(client, scenario.aws) as task_queue,
        _holding(client, name, scenario.held_by),
    ):
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            _workflow_of(scenario.arg),
            scenario.arg,
            id=f"record-{name}",
            task_queue=task_queue,
            search_attributes=start_search_attributes(scenario.arg),
        )
        # A multi-region deployment's phases are its first region's.
        watched = handle
        if isinstance(scenario.arg, MultiRegionRequest):
            first = scenario.arg.regions()[0]
            watched = client.get_workflow_handle(f"{handle.id}-{first}")
        for phase, signal, arg in scenario.signals:
            await wait_for_phase(watched, phase)
            if scenario.signal_after:
                await env.sleep(scenario.signal_after)
            await handle.signal(signal, arg)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        await _save(handle, name)
        await _save_waits(client, handle.id, name)
        if isinstance(scenario.arg, MultiRegionRequest):
            # The children too: one region reporting to its parent is a path of its own.
            status = await handle.query(MultiRegionDeployment.status)
            for region in scenario.arg.regions():
                if status.regions[region].started:
                    child = client.get_workflow_handle(f"{handle.id}-{region}")
                    await _save(child, f"{name}{CHILD}{region}")
                    await _save_waits(client, child.id, f"{name}{CHILD}{region}")


@contextlib.asynccontextmanager
async def _holding(client: Client, name: str, held_by: BaseModel | None) -> AsyncIterator[None]:
    """With ``held_by`` running and holding the lease on game/prod meanwhile, if given."""
    if held_by is None:
        yield
        return
    idle = f"idle-{name}"
    async with Worker(client, task_queue=idle, workflows=ALL_WORKFLOWS):
        holder = await client.start_workflow(
            _workflow_of(held_by), held_by, id=f"record-{name}-holder", task_queue=idle
        )
        lease = client.get_workflow_handle(lease_id("game", "prod"))
        for _ in range(600):
            with contextlib.suppress(RPCError):
                found = await lease.describe()
                if found.parent_id == holder.id and found.status == WorkflowExecutionStatus.RUNNING:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{holder.id} never held {lease.id}")
        try:
            yield
        finally:
            await holder.terminate("recorded")
            # The time-skipping server does not apply parent close policies: end it here.
            await lease.terminate("recorded")


async def _save_waits(client: Client, deployment_id: str, name: str) -> None:
    """The deployment's health, bake and drain children, if it had them: every run of each,
    as ``<name>--<wait>[-run<N>].json``."""
    for wait in ("health", "bake", "drain"):
        handle = client.get_workflow_handle(f"{deployment_id}-{wait}")
        try:
            history = await handle.fetch_history()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        histories = [history]
        while run_id := history.events[
            0
        ].workflow_execution_started_event_attributes.continued_execution_run_id:
            history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
            histories.insert(0, history)
        for number, run in enumerate(histories, 1):
            suffix = "" if number == len(histories) else f"-run{number}"
            _write(run, f"{name}{CHILD}{wait}{suffix}")


async def _save(handle: WorkflowHandle[Any, Any], name: str) -> None:
    _write(await handle.fetch_history(), name)


def _write(history: WorkflowHistory, name: str) -> None:
    last = history.events[-1].event_type
    assert last in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    )
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name}: {len(history.events)} events")


async def record(names: list[str]) -> None:
    """Record ``names``, or every scenario without a history yet."""
    wanted = scenarios()
    unknown = set(names) - set(wanted)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    todo = names or [n for n in wanted if not (HISTORIES / f"{n}.json").exists()]
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
    )
    async with env:
        await register_search_attributes(env.client)
        for name in todo:
            await record_one(env, name, wanted[name])
    if not todo:
        print("every scenario has a history; name one to re-record it")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:]))
    exit_now(0)
