"""MultiRegionDeployment on the time-skipping server: one FakeAws per region (RegionalFakeAws).

The parent starts one BlueGreenDeployment child per region, wave after wave; the tests check
what the parent and each child recorded (phases with their times, approvals, rollbacks) and the
state each region's fake AWS is left in. Messages go as signals (no updates on this server).
Time skips only while a test awaits the parent's result; polling the ``status`` query to act in
a phase runs in real time, so tests act only in phases that need no timer to be reached.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from cli.render_regions import approved_line
from models.deployment import DeploymentStatus, Phase, State
from models.messages import ApproveRequest, RollbackRequest
from models.multi_region import MultiRegionRequest, MultiRegionStatus
from tests.workflows.compensation import after_switch, before_switch
from tests.workflows.driving import Fakes, running_worker
from tests.workflows.driving_regions import (
    REGIONS,
    RegionsHandle,
    child,
    entered,
    region,
    regions_environment,
    regions_outcome,
    regions_request,
    start_regions,
    wait_for_regions,
)
from tests.workflows.fake_aws import OLD_TASK_DEFINITION, FakeAws
from tests.workflows.regional_fake_aws import RegionalFakeAws
from workflows.deployment import BlueGreenDeployment
from workflows.multi_region import MultiRegionDeployment

WEST, EAST, EU = REGIONS
APPROVE = ApproveRequest(by="alice", comment="canary looks good")
APPROVE_BY_BOB = ApproveRequest(by="bob", comment="canary looks good")
ROLLBACK = RollbackRequest(reason="players report desyncs", by="bob")
LONG_BAKE = {"duration": "1h", "poll_interval": "1m"}
RESTORE_AFTER_SWITCH = ["switch_traffic", "set_active_color", "scale_to_zero", "set_color_version"]
"""The fake's calls that put a switched region back, in the order they must come."""
BEFORE_SWITCH = before_switch(OLD_TASK_DEFINITION)
AFTER_SWITCH = after_switch(OLD_TASK_DEFINITION)
"""What a region reports it restored: green back on the fakes' revision 1, by phase rule."""


async def run(
    time_skipping: WorkflowEnvironment, aws: Fakes, request: MultiRegionRequest
) -> MultiRegionStatus:
    """Run a multi-region deployment to its end, untouched; the parent's final status."""
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        return await regions_outcome(await start_regions(client, task_queue, request))


@dataclass
class AtTheGate:
    """West and east deployed with ``require_approval``, both waiting for it."""

    client: Client
    aws: RegionalFakeAws
    handle: RegionsHandle
    waiting: MultiRegionStatus


@asynccontextmanager
async def both_at_the_gate(env: WorkflowEnvironment) -> AsyncIterator[AtTheGate]:
    """Deploy to west and east with ``require_approval`` and wait until both wait for it; the
    worker runs until the block ends."""
    regions = regions_environment([WEST, EAST])
    aws = RegionalFakeAws.of(regions)
    async with running_worker(env.client, aws) as task_queue:
        request = regions_request(regions, require_approval=True)
        handle = await start_regions(env.client, task_queue, request)
        waiting = await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        yield AtTheGate(env.client, aws, handle, waiting)


def assert_deployed_to_green(aws: FakeAws) -> None:
    """Green active on version 2 with all the traffic and its tasks; blue at zero."""
    assert aws.active == "green"
    assert aws.weights == {"blue": 0, "green": 100}
    assert aws.desired == {"blue": 0, "green": 2}
    assert aws.versions == {"blue": "1", "green": "2"}


def assert_back_on_blue(aws: FakeAws) -> None:
    """Blue active on version 1 with all the traffic and its tasks; green back at zero."""
    assert aws.active == "blue"
    assert aws.weights == {"blue": 100, "green": 0}
    assert aws.desired == {"blue": 2, "green": 0}
    assert aws.versions == {"blue": "1", "green": None}


def assert_never_switched(aws: FakeAws) -> None:
    """Neither SSM's active color nor the router was ever written."""
    assert not {"set_active_color", "switch_traffic"} & set(aws.names())


def assert_restored(status: DeploymentStatus, state: State, phase: Phase, steps: list[str]) -> None:
    """The region ended ``state`` from ``phase`` after restoring ``steps``, all of them."""
    assert (status.state, status.phase) == (state, Phase.DONE)
    assert status.report is not None
    assert status.report.phase == phase
    assert status.report.compensation == steps
    assert status.report.compensation_errors == []


# --- all regions succeed ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3])
async def test_every_region_deploys_in_parallel_and_succeeds(
    time_skipping: WorkflowEnvironment, count: int
) -> None:
    regions = list(REGIONS[:count])
    env = regions_environment(regions)
    # Healthy at the third check: each region waits 30 s (two 15 s polls) for its health.
    fakes = {r.replace("-", "_"): FakeAws(healthy_after=3) for r in regions}
    aws = RegionalFakeAws.of(env, **fakes)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(client, task_queue, regions_request(env))
        status = await regions_outcome(handle)
        children = {r: await child(client, handle, r).describe() for r in regions}

    assert status.state == State.SUCCEEDED
    assert (status.reason, status.warnings) == (None, [])
    for r in regions:
        assert region(status, r).state == State.SUCCEEDED
        assert_deployed_to_green(aws.regions[r])
    # In parallel: every child started before any of them ended, and every region was set up
    # before any had finished its 30 s wait for health.
    ends = [c.close_time for c in children.values()]
    assert None not in ends
    assert max(c.start_time for c in children.values()) < min(e for e in ends if e)
    setting_up = [entered(region(status, r), Phase.SETTING_UP) for r in regions]
    healthy = [entered(region(status, r), Phase.TESTING) for r in regions]
    assert min(setting_up) + timedelta(seconds=30) <= min(healthy)
    assert max(setting_up) < min(healthy)


async def test_child_ids_are_the_parent_id_and_the_region(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(list(REGIONS))
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(client, task_queue, regions_request(env))
        status = await regions_outcome(handle)
        children = {r: await child(client, handle, r).describe() for r in REGIONS}

    for r in REGIONS:
        assert status.regions[r].workflow_id == f"{handle.id}-{r}"
        assert region(status, r).deployment_id == f"{handle.id}-{r}"
        assert children[r].id == f"{handle.id}-{r}"
        assert children[r].workflow_type == "BlueGreenDeployment"
        assert children[r].parent_id == handle.id


async def test_parent_status_lists_each_region_phase_colors_and_versions(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(waves=[[WEST, EAST], [EU]])
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(
            client, task_queue, regions_request(env, require_approval=True)
        )
        waiting = await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        await handle.signal(MultiRegionDeployment.rollback_signal, ROLLBACK)
        final = await regions_outcome(handle)

    assert (waiting.state, waiting.current_wave) == (State.RUNNING, 0)
    assert waiting.waves == [[WEST, EAST], [EU]]
    assert list(waiting.regions) == [WEST, EAST, EU]
    for r in (WEST, EAST):
        progress = waiting.regions[r]
        assert (progress.wave, progress.started, progress.ended) == (0, True, False)
        seen = region(waiting, r)
        assert (seen.region, seen.phase, seen.state) == (r, Phase.AWAITING_APPROVAL, State.RUNNING)
        assert (seen.active_color_before, seen.target_color) == ("blue", "green")
        assert seen.active_color_after == "blue"
        assert seen.versions_before == {"blue": "1", "green": None}
        assert seen.versions_after == {"blue": "1", "green": "2"}
    assert waiting.regions[EU].wave == 1
    assert (waiting.regions[EU].started, waiting.regions[EU].status) == (False, None)
    # The rollback (before the switch) ended it; the second wave never started.
    assert final.state == State.ROLLED_BACK
    assert [region(final, r).state for r in (WEST, EAST)] == [State.ROLLED_BACK] * 2
    assert (final.regions[EU].started, final.regions[EU].status) == (False, None)


# --- approval ----------------------------------------------------------------------------------


async def test_one_approval_on_the_parent_is_passed_on_to_every_region_later_waves_too(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(waves=[[WEST, EAST], [EU]])
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(
            client, task_queue, regions_request(env, require_approval=True)
        )
        waiting = await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        assert all(aws.regions[r].active == "blue" for r in REGIONS)
        await handle.signal(MultiRegionDeployment.approve_signal, APPROVE)
        status = await regions_outcome(handle)

    assert waiting.regions[EU].started is False
    assert status.state == State.SUCCEEDED
    assert status.approval is not None
    assert (status.approval.by, status.approval.comment) == ("alice", "canary looks good")
    for r in REGIONS:
        approval = region(status, r).approval
        assert approval is not None
        assert approval.by == "alice"
        assert approval.comment == f"canary looks good (via {handle.id})"
        assert_deployed_to_green(aws.regions[r])
    # The second wave reached its gate after the approval, and went through without another.
    assert entered(region(status, EU), Phase.AWAITING_APPROVAL) >= status.approval.at


async def test_a_traffic_step_approval_on_the_parent_lets_every_region_at_that_step_go_on(
    time_skipping: WorkflowEnvironment,
) -> None:
    traffic = {"strategy": "canary", "percent": 10, "pause": "1m", "approve_at": [10]}
    env = regions_environment(traffic=traffic, bake={"duration": "0s"})
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(client, task_queue, regions_request(env))
        waiting = await wait_for_regions(handle, Phase.SWITCHING, [WEST, EAST])
        for _ in range(600):
            if all(region(waiting, r).awaiting_step_approval for r in (WEST, EAST)):
                break
            await asyncio.sleep(0.05)
            waiting = await handle.query(MultiRegionDeployment.status)
        assert all(aws.regions[r].weights == {"blue": 90, "green": 10} for r in (WEST, EAST))
        assert all(aws.regions[r].active == "blue" for r in (WEST, EAST))
        await handle.signal(MultiRegionDeployment.approve_signal, APPROVE)
        status = await regions_outcome(handle)

    assert status.state == State.SUCCEEDED
    assert status.approval is None  # not an approval to switch: none was asked for
    assert [(a.by, a.comment) for a in status.step_approvals] == [
        ("alice", f"traffic step of {WEST}, {EAST}")
    ]
    assert approved_line(status) == (
        f"approved {handle.id} as alice: the traffic step of {WEST}, {EAST} goes on"
    )
    for r in (WEST, EAST):
        approvals = region(status, r).step_approvals
        assert [(a.step, a.percent, a.by) for a in approvals] == [(1, 10, "alice")]
        assert aws.regions[r].splits == [{"blue": 90, "green": 10}, {"blue": 0, "green": 100}]


async def test_a_report_that_arrives_late_does_not_undo_a_newer_one(
    time_skipping: WorkflowEnvironment,
) -> None:
    # Signals between workflows keep no order: a region's report of its testing phase can reach
    # the parent after the one that says it waits for approval. The parent must keep the newer
    # one, or it never passes the approval on to that region.
    async with both_at_the_gate(time_skipping) as gate:
        newest = gate.waiting.regions[EAST].status
        assert newest is not None and newest.report_number > 1
        late = newest.model_copy(
            update={"phase": Phase.TESTING, "report_number": newest.report_number - 1}
        )
        await gate.handle.signal("region_progress", late)
        await gate.handle.signal(MultiRegionDeployment.approve_signal, APPROVE)
        status = await regions_outcome(gate.handle)

    assert status.state == State.SUCCEEDED
    for r in (WEST, EAST):
        approval = region(status, r).approval
        assert approval is not None and approval.by == "alice"
        assert_deployed_to_green(gate.aws.regions[r])


async def test_approving_one_region_directly_releases_only_that_one(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with both_at_the_gate(time_skipping) as gate:
        client, handle = gate.client, gate.handle
        await child(client, handle, WEST).signal(
            BlueGreenDeployment.approve_signal, ApproveRequest(by="carol")
        )
        # West needs no timer to finish (no bake, nobody left to drain).
        west_done = await wait_for_regions(handle, Phase.DONE, [WEST])
        east_waiting = await child(client, handle, EAST).query(BlueGreenDeployment.status)
        east_aws_then = list(gate.aws.regions[EAST].names())
        await handle.signal(MultiRegionDeployment.approve_signal, APPROVE)
        status = await regions_outcome(handle)

    assert region(west_done, WEST).state == State.SUCCEEDED
    assert west_done.approval is None
    assert (east_waiting.phase, east_waiting.approval) == (Phase.AWAITING_APPROVAL, None)
    assert "set_active_color" not in east_aws_then
    west_approval, east_approval = region(status, WEST).approval, region(status, EAST).approval
    assert west_approval is not None and west_approval.by == "carol"
    assert east_approval is not None and east_approval.by == "alice"
    assert status.state == State.SUCCEEDED


async def test_four_eyes_refuses_the_starter_on_the_parent_and_in_a_region(
    time_skipping: WorkflowEnvironment,
) -> None:
    # One region asking for four eyes is enough: the one approval reaches that region too.
    env = regions_environment(
        [WEST, EAST], in_region={EAST: {"approval": {"require_different_approver": True}}}
    )
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    own = ApproveRequest(by="alice", comment="mine")
    async with running_worker(client, aws) as task_queue:
        request = regions_request(env, require_approval=True, requested_by="alice")
        handle = await start_regions(client, task_queue, request)
        await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        await handle.signal(MultiRegionDeployment.approve_signal, own)
        await child(client, handle, EAST).signal(BlueGreenDeployment.approve_signal, own)
        refused = await handle.query(MultiRegionDeployment.status)
        east_refused = await child(client, handle, EAST).query(BlueGreenDeployment.status)
        calls_then = [aws.regions[r].names() for r in (WEST, EAST)]
        await handle.signal(MultiRegionDeployment.approve_signal, APPROVE_BY_BOB)
        status = await regions_outcome(handle)

    reason = (
        "alice started this deployment; approval.require_different_approver asks someone else"
        " to approve it"
    )
    assert refused.approval is None
    assert refused.warnings == [f"ignored approve from alice: {reason}"]
    assert (east_refused.phase, east_refused.approval) == (Phase.AWAITING_APPROVAL, None)
    assert east_refused.warnings == [f"ignored approve from alice: {reason}"]
    assert all("set_active_color" not in names for names in calls_then)
    assert status.state == State.SUCCEEDED
    assert status.approval is not None and status.approval.by == "bob"
    for r in (WEST, EAST):
        approval = region(status, r).approval
        assert approval is not None and approval.by == "bob"
        assert_deployed_to_green(aws.regions[r])


async def test_switch_together_waits_for_the_slowest_region_of_the_wave(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(list(REGIONS), health={"timeout": "10m", "poll_interval": "1m"})
    # East is healthy at its fifth check, four minutes after the others.
    aws = RegionalFakeAws.of(env, us_east_1=FakeAws(healthy_after=5))
    status = await run(time_skipping, aws, regions_request(env, switch_together=True))

    assert status.state == State.SUCCEEDED
    slowest_ready = entered(region(status, EAST), Phase.AWAITING_APPROVAL)
    for r in (WEST, EU):
        at_gate = entered(region(status, r), Phase.AWAITING_APPROVAL)
        assert at_gate + timedelta(minutes=3) < slowest_ready
    for r in REGIONS:
        seen = region(status, r)
        assert entered(seen, Phase.SWITCHING) >= slowest_ready
        assert seen.approval is not None
        assert (seen.approval.by, seen.approval.comment) == (
            status.deployment_id,
            "every region of the wave is ready",
        )
        assert seen.warnings == []
        assert_deployed_to_green(aws.regions[r])


# --- failure and rollback ------------------------------------------------------------------------


def failing_west(fail_fast: bool) -> tuple[MultiRegionRequest, RegionalFakeAws]:
    """West never healthy (fails at its 10 m health timeout); east switches at once and bakes
    for an hour; EU becomes healthy only after 15 minutes (its 60th check, 1 h timeout)."""
    env = regions_environment(
        list(REGIONS),
        in_region={EU: {"health": {"timeout": "1h", "poll_interval": "15s"}}},
        bake=LONG_BAKE,
    )
    aws = RegionalFakeAws.of(
        env, us_west_2=FakeAws(healthy_after=None), eu_west_1=FakeAws(healthy_after=60)
    )
    return regions_request(env, fail_fast=fail_fast), aws


def assert_west_failed_on_health(status: MultiRegionStatus, aws: RegionalFakeAws) -> None:
    assert status.reason is not None
    assert status.reason.startswith(f"{WEST}: green was not healthy after 10m")
    west = region(status, WEST)
    assert_restored(west, State.FAILED, Phase.WAITING_FOR_HEALTH, BEFORE_SWITCH)
    assert west.report is not None and west.report.error_type == "HealthTimeout"
    assert_back_on_blue(aws.regions[WEST])
    assert_never_switched(aws.regions[WEST])


async def test_a_region_failing_with_fail_fast_rolls_the_others_back_by_their_phase(
    time_skipping: WorkflowEnvironment,
) -> None:
    request, aws = failing_west(fail_fast=True)
    status = await run(time_skipping, aws, request)

    assert status.state == State.FAILED
    assert status.rollback is None
    assert_west_failed_on_health(status, aws)
    for r in (EAST, EU):
        rollback = region(status, r).rollback
        assert rollback is not None
        assert rollback.by == status.deployment_id
        assert rollback.reason.startswith(f"{WEST} failed (fail fast): green was not healthy")
    # East had switched and was baking: traffic back to blue first, then SSM, then green.
    east = region(status, EAST)
    assert_restored(east, State.ROLLED_BACK, Phase.BAKING, AFTER_SWITCH)
    assert aws.regions[EAST].names()[-4:] == RESTORE_AFTER_SWITCH
    assert_back_on_blue(aws.regions[EAST])
    # EU was still waiting for its health: green scaled back, blue and the router untouched.
    assert_restored(region(status, EU), State.ROLLED_BACK, Phase.WAITING_FOR_HEALTH, BEFORE_SWITCH)
    assert_back_on_blue(aws.regions[EU])
    assert_never_switched(aws.regions[EU])


async def test_a_region_failing_without_fail_fast_lets_the_others_succeed(
    time_skipping: WorkflowEnvironment,
) -> None:
    request, aws = failing_west(fail_fast=False)
    status = await run(time_skipping, aws, request)

    assert status.state == State.FAILED
    assert_west_failed_on_health(status, aws)
    for r in (EAST, EU):
        assert region(status, r).state == State.SUCCEEDED
        assert region(status, r).rollback is None
        assert_deployed_to_green(aws.regions[r])
    assert f"these regions run the new version: {EAST}, {EU}" in status.warnings


async def test_rollback_on_the_parent_in_the_bake_rolls_every_region_back(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(list(REGIONS), bake=LONG_BAKE)
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(client, task_queue, regions_request(env))
        await wait_for_regions(handle, Phase.BAKING, list(REGIONS))
        assert all(aws.regions[r].active == "green" for r in REGIONS)
        await handle.signal(MultiRegionDeployment.rollback_signal, ROLLBACK)
        status = await regions_outcome(handle)

    assert status.state == State.ROLLED_BACK
    assert status.rollback is not None and status.rollback.by == "bob"
    assert status.reason is not None
    assert status.reason.endswith("rollback requested by bob: players report desyncs")
    for r in REGIONS:
        seen = region(status, r)
        assert_restored(seen, State.ROLLED_BACK, Phase.BAKING, AFTER_SWITCH)
        assert seen.rollback is not None
        assert (seen.rollback.by, seen.rollback.phase) == ("bob", Phase.BAKING)
        assert aws.regions[r].names()[-4:] == RESTORE_AFTER_SWITCH
        assert_back_on_blue(aws.regions[r])


# --- waves ---------------------------------------------------------------------------------------


async def test_a_wave_starts_only_after_every_region_of_the_previous_one_passed_its_bake(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(
        waves=[[WEST, EAST], [EU]],
        health={"timeout": "10m", "poll_interval": "1m"},
        bake={"duration": "10m"},
    )
    # East is healthy four minutes after west, so it ends its bake four minutes later.
    aws = RegionalFakeAws.of(env, us_east_1=FakeAws(healthy_after=5))
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(client, task_queue, regions_request(env))
        status = await regions_outcome(handle)
        eu_started = (await child(client, handle, EU).describe()).start_time

    assert status.state == State.SUCCEEDED
    eu_set_up = entered(region(status, EU), Phase.SETTING_UP)
    for r in (WEST, EAST):
        first = region(status, r)
        assert entered(first, Phase.BAKING) + timedelta(minutes=10) <= eu_set_up
        assert entered(first, Phase.DRAINING) <= eu_set_up
        assert entered(first, Phase.DRAINING) <= eu_started
    # West passed its bake minutes before: the wave waited for east, its slowest region.
    assert entered(region(status, WEST), Phase.DRAINING) + timedelta(minutes=3) < eu_set_up
    assert_deployed_to_green(aws.regions[EU])


@pytest.mark.parametrize("fail_fast", [True, False], ids=["fail_fast", "independent"])
async def test_a_failure_in_the_first_wave_means_the_second_never_starts(
    time_skipping: WorkflowEnvironment, fail_fast: bool
) -> None:
    env = regions_environment(waves=[[WEST], [EAST, EU]])
    aws = RegionalFakeAws.of(env, us_west_2=FakeAws(healthy_after=None))
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(client, task_queue, regions_request(env, fail_fast=fail_fast))
        status = await regions_outcome(handle)
        for r in (EAST, EU):
            with pytest.raises(RPCError) as caught:
                await child(client, handle, r).describe()
            assert caught.value.status == RPCStatusCode.NOT_FOUND

    assert status.state == State.FAILED
    assert status.current_wave == 0
    assert_west_failed_on_health(status, aws)
    for r in (EAST, EU):
        assert (status.regions[r].started, status.regions[r].status) == (False, None)
        assert aws.regions[r].calls == []


# --- a failure or a rollback does not leave the other regions stuck ---------------------------


async def test_rollback_on_the_parent_is_the_reason_not_a_region(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment([WEST, EAST])
    client = time_skipping.client
    async with running_worker(client, RegionalFakeAws.of(env)) as task_queue:
        handle = await start_regions(
            client, task_queue, regions_request(env, require_approval=True)
        )
        await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        await handle.signal(MultiRegionDeployment.rollback_signal, ROLLBACK)
        status = await regions_outcome(handle)

    assert status.state == State.ROLLED_BACK
    assert status.reason == "rollback requested by bob: players report desyncs"


async def test_without_fail_fast_the_approval_reaches_a_region_at_the_gate_after_a_failure(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(list(REGIONS), health={"timeout": "10m", "poll_interval": "1m"})
    denied = ApplicationError(
        "ModifyListener: AccessDenied", type="AccessDenied", non_retryable=True
    )
    aws = RegionalFakeAws.of(
        env,
        us_west_2=FakeAws(failures={"switch_traffic": [denied]}),
        eu_west_1=FakeAws(healthy_after=5),
    )
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(
            client, task_queue, regions_request(env, require_approval=True, fail_fast=False)
        )
        await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        # West fails its switch once approved; EU is healthy four minutes later.
        await handle.signal(MultiRegionDeployment.approve_signal, APPROVE)
        status = await regions_outcome(handle)

    assert region(status, WEST).state == State.ROLLED_BACK
    assert region(status, EAST).state == State.SUCCEEDED
    eu = region(status, EU)
    assert eu.approval is not None and eu.approval.by == "alice"
    assert eu.state == State.SUCCEEDED


async def test_without_fail_fast_switch_together_releases_the_rest_of_the_wave_after_a_failure(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment(
        list(REGIONS),
        health={"timeout": "10m", "poll_interval": "1m"},
        in_region={WEST: {"health": {"timeout": "1m", "poll_interval": "1m"}}},
    )
    # West fails after a minute; east and EU are ready to switch after four.
    aws = RegionalFakeAws.of(
        env,
        us_west_2=FakeAws(healthy_after=None),
        us_east_1=FakeAws(healthy_after=5),
        eu_west_1=FakeAws(healthy_after=5),
    )
    status = await run(
        time_skipping, aws, regions_request(env, switch_together=True, fail_fast=False)
    )

    assert region(status, WEST).state == State.FAILED
    assert [region(status, r).state for r in (EAST, EU)] == [State.SUCCEEDED] * 2


async def test_switch_together_releases_a_wave_whose_other_region_was_approved_on_its_own(
    time_skipping: WorkflowEnvironment,
) -> None:
    # West is approved on its own child ID and switches, then bakes for an hour. East is at
    # the gate too; once the parent is approved, every region of the wave has reached the gate
    # (west went through it): east switches then, not when west has ended (its bake is longer
    # than east's approval timeout, which would abort east and, fail fast, roll west back).
    env = regions_environment(
        [WEST, EAST], bake=LONG_BAKE, approval={"timeout": "30m", "on_timeout": "abort"}
    )
    aws = RegionalFakeAws.of(env)
    client = time_skipping.client
    async with running_worker(client, aws) as task_queue:
        request = regions_request(env, switch_together=True, require_approval=True)
        handle = await start_regions(client, task_queue, request)
        await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        await child(client, handle, WEST).signal(
            BlueGreenDeployment.approve_signal, ApproveRequest(by="carol")
        )
        await wait_for_regions(handle, Phase.BAKING, [WEST])
        await handle.signal(MultiRegionDeployment.approve_signal, APPROVE)
        status = await regions_outcome(handle)

    assert status.state == State.SUCCEEDED, status.reason
    assert status.approval is not None
    east = region(status, EAST)
    assert east.approval is not None and east.approval.by == "alice"
    assert entered(east, Phase.SWITCHING) - status.approval.at < timedelta(seconds=5)
    for r in (WEST, EAST):
        assert_deployed_to_green(aws.regions[r])
