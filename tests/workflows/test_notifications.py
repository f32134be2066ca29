"""Notifications on the time-skipping server: the workflows with fake AWS and the REAL
notification activity, POSTing to a local receiver (local/notify_receiver.py) over HTTP.

Each event, to Slack and a webhook; the events a table lists; a receiver that fails once (the
retry), one that always fails (a warning, and the deployment still succeeds), a variable the
worker lacks; a multi-region deployment speaking once from its parent, and a region of its own
when it ends otherwise while the others go on. The histories hold no webhook URL.
"""

import asyncio
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from local.notify_receiver import Received
from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from models.messages import ApproveRequest, RollbackRequest
from models.multi_region import MultiRegionStatus
from tests.factories import deployment_request, environment
from tests.notifying import (
    WEB_UI,
    WEBHOOK_ENV,
    WEBHOOK_PATH,
    assert_no_secret,
    history_text,
    notify_activities,
    notify_tables,
    notifying_worker,
    receiving,
)
from tests.workflows.driving import (
    Fakes,
    outcome,
    start,
    wait_for_phase,
    wait_until_between_activities,
)
from tests.workflows.driving_regions import (
    REGIONS,
    child,
    regions_environment,
    regions_outcome,
    regions_request,
    start_regions,
    wait_for_regions,
)
from tests.workflows.fake_aws import FakeAws
from tests.workflows.regional_fake_aws import RegionalFakeAws
from workflows.deployment import BlueGreenDeployment
from workflows.lease import lease_id
from workflows.multi_region import MultiRegionDeployment

WEST, EAST, _ = REGIONS
BAKE = {"duration": "10m", "poll_interval": "1m", "alarms": ["game-5xx"]}
SHORT_HEALTH = {"timeout": "5m", "poll_interval": "15s"}
CANARY_APPROVED = {"strategy": "canary", "percent": 10, "pause": "1m", "approve_at": [10]}
"""10% to the new color, held until someone approves it, then all of it."""


def denied() -> ApplicationError:
    return ApplicationError(
        "ModifyListener: AccessDenied: denied", type="AccessDenied", non_retryable=True
    )


def request(webhook_events: list[str] | None = None, **options: Any) -> DeploymentRequest:
    """game 2 to prod, notifying Slack and a webhook; ``options``: environment keys, and the
    request's own (require_approval, …) by name."""
    own = {k: options.pop(k) for k in list(options) if k in DeploymentRequest.model_fields}
    return deployment_request(environment(notify=notify_tables(webhook_events), **options), **own)


def events(received: list[Received], kind: str) -> list[str]:
    return [r.event for r in received if r.kind == kind and r.answered < 300]


def one(received: list[Received], kind: str, event: str) -> Received:
    found = [r for r in received if r.kind == kind and r.event == event and r.answered < 300]
    assert len(found) == 1, [(r.kind, r.event) for r in received]
    return found[0]


async def run_to_the_end(
    client: Client, aws: Fakes, deployment: DeploymentRequest
) -> tuple[DeploymentStatus, str]:
    """Run a deployment untouched; its final status and its history, payloads decoded."""
    async with notifying_worker(client, aws) as task_queue:
        handle = await start(client, task_queue, deployment)
        status = await outcome(handle)
        return status, history_text(await handle.fetch_history())


# --- one region -----------------------------------------------------------------------------------


async def test_approval_switch_and_success_reach_slack_and_a_webhook_with_the_commands(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    with receiving() as receiver:
        async with notifying_worker(client, FakeAws()) as task_queue:
            handle = await start(client, task_queue, request(require_approval=True))
            await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
            waiting = await receiver.arrived(lambda got: len(got) == 2, timeout=30)
            await wait_until_between_activities(handle)
            await handle.signal(BlueGreenDeployment.approve_signal, ApproveRequest(by="alice"))
            status = await outcome(handle)
            text = history_text(await handle.fetch_history())

    assert status.state == State.SUCCEEDED
    assert status.warnings == []
    got = receiver.received
    order = ["awaiting_approval", "switched", "succeeded"]
    assert events(got, "slack") == events(got, "webhook") == order

    # Waiting for approval: who, what, until when, and the exact commands.
    assert {r.kind for r in waiting} == {"slack", "webhook"}
    doc = one(got, "webhook", "awaiting_approval").body
    deployment = handle.id
    assert doc["title"] == "awaiting approval: game 2 → green (prod, us-west-2)"
    assert doc["deployment_id"] == deployment and doc["run_id"] == handle.result_run_id
    assert (doc["service"], doc["environment"], doc["version"]) == ("game", "prod", "2")
    assert doc["regions"] == ["us-west-2"] and doc["phase"] == "awaiting_approval"
    assert doc["awaiting_approval_until"] is not None
    detail = doc["details"][0]
    assert (detail["active_color_before"], detail["target_color"]) == ("blue", "green")
    assert detail["versions_before"] == {"blue": "1", "green": None}
    commands = {c["action"]: c for c in doc["commands"]}
    assert commands["approve"]["client"] == f"python client.py approve {deployment}"
    assert commands["approve"]["temporal"] == (
        f"temporal workflow update execute --workflow-id {deployment} --name approve"
        """ --input '{"by": "your-name"}'"""
    )
    assert commands["roll back"]["client"] == (
        f'python client.py rollback {deployment} --reason "what is wrong"'
    )
    assert doc["web_ui"] is None  # only the Slack table names the Web UI
    slack = one(got, "slack", "awaiting_approval")
    assert slack.text() == doc["title"]
    assert f"python client.py approve {deployment}" in slack.everything()
    assert "temporal workflow update execute" in slack.everything()
    assert (
        f"{WEB_UI}/namespaces/default/workflows/{deployment}/{handle.result_run_id}/history"
        in slack.everything()
    )

    # The switch and the end.
    assert one(got, "slack", "switched").text() == "switched game 2 → green (prod, us-west-2)"
    succeeded = one(got, "webhook", "succeeded").body
    assert succeeded["title"] == "succeeded: game 2 → green (prod, us-west-2)"
    assert succeeded["approval"]["by"] == "alice"
    assert succeeded["details"][0]["traffic_on"] == "green"
    # One ID per notification, the same for both targets; another per event.
    assert len({r.notification_id for r in got}) == 3
    assert all(r.headers["content-type"].startswith("application/json") for r in got)
    assert_no_secret(text, receiver)


@pytest.mark.parametrize(
    ("event", "aws", "options", "rollback_in"),
    [
        ("failed", FakeAws(healthy_after=None), {"health": SHORT_HEALTH}, None),
        ("rolled_back", FakeAws(alarms={"game-5xx": ["OK"]}), {"bake": BAKE}, Phase.BAKING),
        (
            "needs_a_person",
            # The switch is denied, and so is putting the traffic back: nothing after it runs.
            FakeAws(failures={"switch_traffic": [denied(), denied()]}),
            {},
            None,
        ),
    ],
    ids=["failed", "rolled_back", "needs_a_person"],
)
async def test_how_a_deployment_ended_and_what_was_restored_is_told(
    time_skipping: WorkflowEnvironment,
    event: str,
    aws: FakeAws,
    options: dict[str, Any],
    rollback_in: Phase | None,
) -> None:
    client = time_skipping.client
    # The webhook hears of failures only: it still hears that one needs a person.
    deployment = request(webhook_events=["failed"], **options)
    with receiving() as receiver:
        async with notifying_worker(client, aws) as task_queue:
            handle = await start(client, task_queue, deployment)
            if rollback_in:
                await wait_for_phase(handle, rollback_in)
                await receiver.arrived(lambda got: len(got) == 1, timeout=30)  # switched, to Slack
                await wait_until_between_activities(handle)
                await handle.signal(
                    BlueGreenDeployment.rollback_signal,
                    RollbackRequest(reason="desyncs", by="bob"),
                )
            status = await outcome(handle)
            text = history_text(await handle.fetch_history())

    got = receiver.received
    assert events(got, "slack")[-1] == event
    assert events(got, "webhook") == ([] if event == "rolled_back" else [event])
    slack = one(got, "slack", event)
    report = status.report
    assert report is not None
    assert report.reason in slack.text()
    everything = slack.everything()
    for step in report.compensation:
        assert step in everything
    if event == "failed":
        assert slack.text().startswith("failed in waiting_for_health: game 2 → green (prod")
        assert "green was not healthy after 5m" in slack.text()
        doc = one(got, "webhook", "failed").body
        assert doc["details"][0]["restored"] == report.compensation
        assert doc["details"][0]["failed_in"] == "waiting_for_health"
    if event == "rolled_back":
        assert status.state == State.ROLLED_BACK
        assert slack.text().startswith("rolled back in baking: game 2 → green (prod, us-west-2)")
        assert "rollback requested by bob: desyncs" in slack.text()
        assert "traffic back to blue" in everything
    if event == "needs_a_person":
        assert status.state == State.FAILED
        assert report.compensation_errors and report.compensation_errors[0].startswith(
            "traffic back to blue:"
        )
        assert slack.text().startswith("needs a person: game 2 → green (prod, us-west-2)")
        assert "Not restored, needs a person" in everything
        doc = one(got, "webhook", "needs_a_person").body
        assert doc["needs_a_person"] == report.compensation_errors
    assert_no_secret(text, receiver)


async def test_a_cancelled_deployment_tells_it_was_rolled_back_before_it_ends(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(healthy_after=None)
    client = time_skipping.client
    with receiving() as receiver:
        async with notifying_worker(client, aws) as task_queue:
            handle = await start(client, task_queue, request())
            while aws.health_checks < 3:
                await time_skipping.sleep(15)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    # Sent before the workflow closed: nothing waits on the receiver now.
    ended = one(receiver.received, "webhook", "rolled_back").body
    assert ended["reason"] == "the deployment was cancelled"
    assert ended["details"][0]["restored"]


async def test_success_that_kept_the_old_color_says_how_to_switch_back(
    time_skipping: WorkflowEnvironment,
) -> None:
    with receiving() as receiver:
        status, _ = await run_to_the_end(
            time_skipping.client,
            FakeAws(),
            request(webhook_events=["succeeded"], shutdown_inactive_cluster=False),
        )
    assert status.state == State.SUCCEEDED
    commands = one(receiver.received, "webhook", "succeeded").body["commands"]
    assert [c["client"] for c in commands] == [
        "python client.py switch --environment prod",
        f"python client.py status {commands[-1]['client'].split()[-1]}",
    ]


async def test_a_traffic_step_waiting_for_approval_is_told_with_the_approve_command(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    with receiving() as receiver:
        async with notifying_worker(client, FakeAws()) as task_queue:
            handle = await start(client, task_queue, request(traffic=CANARY_APPROVED))
            await receiver.arrived(lambda got: len(got) == 2, timeout=30)
            await wait_until_between_activities(handle)
            await handle.signal(BlueGreenDeployment.approve_signal, ApproveRequest(by="bob"))
            status = await outcome(handle)

    assert status.state == State.SUCCEEDED
    got = receiver.received
    assert events(got, "slack") == ["awaiting_approval", "switched", "succeeded"]
    doc = one(got, "webhook", "awaiting_approval").body
    assert (
        doc["title"] == "awaiting approval: game 2 → green (prod, us-west-2) at 10% (step 1 of 2)"
    )
    detail = doc["details"][0]
    assert (detail["traffic_plan"], detail["traffic_step"]) == ([10, 100], 1)
    assert detail["awaiting_step_approval"] and doc["phase"] == "switching"
    assert doc["awaiting_approval_until"] is not None
    commands = {c["action"]: c["client"] for c in doc["commands"]}
    assert commands["approve"] == f"python client.py approve {handle.id}"


async def test_a_deployment_the_lease_refuses_tells_nobody(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    lease = client.get_workflow_handle(lease_id("game", "prod"))
    with receiving() as receiver:
        async with notifying_worker(client, FakeAws()) as task_queue:
            # Another deployment of game/prod holds the lease, waiting for approval on a timer
            # (an activity left pending would stop the test server's clock for good).
            holder = await start(client, task_queue, deployment_request(require_approval=True))
            await wait_for_phase(holder, Phase.AWAITING_APPROVAL)
            try:
                handle = await start(client, task_queue, request())
                # In real time, never awaiting a result, which would let the server skip to the
                # holder's approval timeout: it would wake, and be terminated mid-activity.
                while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await asyncio.sleep(0.05)
                status = await handle.query(BlueGreenDeployment.status)
                text = history_text(await handle.fetch_history())
            finally:
                await wait_until_between_activities(holder)
                await holder.terminate("end of test")
                # The time-skipping server does not apply parent close policies.
                await lease.terminate("end of test")

    assert status.state == State.FAILED
    assert status.report is not None and status.report.error_type == "LeaseHeld"
    assert receiver.received == []
    assert "send_notification" not in text


async def test_only_the_events_a_table_lists_reach_it(time_skipping: WorkflowEnvironment) -> None:
    with receiving() as receiver:
        status, _ = await run_to_the_end(
            time_skipping.client, FakeAws(), request(webhook_events=["succeeded"])
        )
    assert status.state == State.SUCCEEDED
    assert events(receiver.received, "webhook") == ["succeeded"]
    assert events(receiver.received, "slack") == ["switched", "succeeded"]


async def test_a_receiver_that_fails_once_gets_the_message_on_the_retry(
    time_skipping: WorkflowEnvironment,
) -> None:
    with receiving({WEBHOOK_PATH: [500, 200]}) as receiver:
        status, text = await run_to_the_end(
            time_skipping.client, FakeAws(), request(webhook_events=["succeeded"])
        )
    assert status.state == State.SUCCEEDED
    assert status.warnings == []
    hooks = [r for r in receiver.received if r.kind == "webhook"]
    assert [r.answered for r in hooks] == [500, 200]
    assert hooks[0].notification_id == hooks[1].notification_id
    assert hooks[0].body == hooks[1].body
    assert_no_secret(text, receiver)


async def test_one_target_gets_its_messages_in_order_even_when_one_is_retried(
    time_skipping: WorkflowEnvironment,
) -> None:
    # The switch's message fails twice; the end comes meanwhile and waits for it.
    with receiving({WEBHOOK_PATH: [500, 500, 200]}) as receiver:
        status, _ = await run_to_the_end(
            time_skipping.client, FakeAws(), request(webhook_events=["switched", "succeeded"])
        )
    assert status.state == State.SUCCEEDED and status.warnings == []
    hooks = [(r.event, r.answered) for r in receiver.received if r.kind == "webhook"]
    assert hooks == [("switched", 500), ("switched", 500), ("switched", 200), ("succeeded", 200)]


async def test_a_receiver_that_always_fails_leaves_a_warning_and_the_deployment_succeeds(
    time_skipping: WorkflowEnvironment,
) -> None:
    with receiving({WEBHOOK_PATH: [500]}) as receiver:
        status, text = await run_to_the_end(
            time_skipping.client, FakeAws(), request(webhook_events=["switched", "succeeded"])
        )
    assert status.state == State.SUCCEEDED
    hooks = [r for r in receiver.received if r.kind == "webhook"]
    assert len(hooks) == 8  # two notifications, four attempts each
    assert status.warnings == [
        f"{event} notification (webhook, {WEBHOOK_ENV}) not delivered after 4 attempts:"
        f" POST to ${WEBHOOK_ENV}: HTTP 500: failing on purpose"
        for event in ("switched", "succeeded")
    ]
    # Slack, which answers, got both.
    assert events(receiver.received, "slack") == ["switched", "succeeded"]
    # The failures are in the history; the URL is not.
    assert f"POST to ${WEBHOOK_ENV}: HTTP 500" in text
    assert_no_secret(text, receiver)


async def test_a_variable_the_worker_lacks_is_one_attempt_and_a_warning_naming_it(
    time_skipping: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiving() as receiver:
        monkeypatch.delenv(WEBHOOK_ENV)
        status, text = await run_to_the_end(
            time_skipping.client, FakeAws(), request(webhook_events=["succeeded"])
        )
    assert status.state == State.SUCCEEDED
    assert status.warnings == [
        f"succeeded notification (webhook, {WEBHOOK_ENV}) not delivered: the worker's"
        f" environment has no {WEBHOOK_ENV}: set it, on every worker, to the URL this"
        " notification goes to"
    ]
    assert events(receiver.received, "webhook") == []
    assert events(receiver.received, "slack") == ["switched", "succeeded"]
    assert text.count("NotifyUrlMissing") >= 1
    assert_no_secret(text, receiver)


async def test_without_notify_no_notification_activity_is_scheduled(
    time_skipping: WorkflowEnvironment,
) -> None:
    # What lets the runs started before notify existed replay: no command of it in them.
    client = time_skipping.client
    async with notifying_worker(client, FakeAws()) as task_queue:
        handle = await start(client, task_queue, deployment_request(require_approval=False))
        assert (await outcome(handle)).state == State.SUCCEEDED
        assert notify_activities(await handle.fetch_history()) == 0


# --- several regions ------------------------------------------------------------------------------


async def test_several_regions_are_told_once_per_event_from_the_parent(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment([WEST, EAST], notify=notify_tables(["succeeded"]))
    client = time_skipping.client
    with receiving() as receiver:
        async with notifying_worker(client, RegionalFakeAws.of(env)) as task_queue:
            handle = await start_regions(
                client, task_queue, regions_request(env, require_approval=True)
            )
            await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
            await receiver.arrived(lambda got: len(got) == 1, timeout=30)
            await handle.signal(MultiRegionDeployment.approve_signal, ApproveRequest(by="alice"))
            status = await regions_outcome(handle)
            children = [await child(client, handle, r).fetch_history() for r in (WEST, EAST)]
            text = history_text(await handle.fetch_history())

    assert status.state == State.SUCCEEDED
    got = receiver.received
    assert events(got, "slack") == ["awaiting_approval", "switched", "succeeded"]
    assert events(got, "webhook") == ["succeeded"]
    approval = one(got, "slack", "awaiting_approval")
    assert approval.text() == "awaiting approval: game 2 → green (prod, us-west-2, us-east-1)"
    assert f"python client.py approve {handle.id}" in approval.everything()
    assert one(got, "slack", "switched").text() == (
        "switched game 2 → green (prod, us-west-2, us-east-1)"
    )
    doc = one(got, "webhook", "succeeded").body
    assert doc["scope"] == "deployment" and doc["regions"] == [WEST, EAST]
    assert [d["state"] for d in doc["details"]] == ["succeeded", "succeeded"]
    assert [d["wave"] for d in doc["details"]] == [1, 1]
    # The regions' own workflows sent nothing.
    assert [notify_activities(h) for h in children] == [0, 0]
    assert_no_secret(text, receiver)


async def test_regions_at_a_traffic_step_are_told_and_approved_from_the_parent(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = regions_environment([WEST, EAST], traffic=CANARY_APPROVED, notify=notify_tables())
    client = time_skipping.client

    def told(got: list[Received]) -> set[str]:
        return {
            region
            for r in got
            if r.kind == "webhook" and r.event == "awaiting_approval"
            for region in r.body["regions"]
        }

    with receiving() as receiver:
        async with notifying_worker(client, RegionalFakeAws.of(env)) as task_queue:
            handle = await start_regions(client, task_queue, regions_request(env))
            await receiver.arrived(lambda got: told(got) == {WEST, EAST}, timeout=30)
            await handle.signal(MultiRegionDeployment.approve_signal, ApproveRequest(by="bob"))
            status = await regions_outcome(handle)

    assert status.state == State.SUCCEEDED
    asked = [r.body for r in receiver.received if r.kind == "webhook"]
    approvals = [a for a in asked if a["event"] == "awaiting_approval"]
    assert 1 <= len(approvals) <= 2  # both regions at once, or each as it came to the step
    assert all(a["title"].endswith("at 10% (step 1 of 2)") for a in approvals)
    assert all(
        a["commands"][0]["client"] == f"python client.py approve {handle.id}" for a in approvals
    )
    assert [a["event"] for a in asked][-2:] == ["switched", "succeeded"]


async def east_never_healthy(
    time_skipping: WorkflowEnvironment, *, fail_fast: bool
) -> tuple[MultiRegionStatus, list[dict[str, Any]]]:
    """West and east in one wave, west baking for an hour while east never gets healthy: the
    parent's end and the webhook's messages."""
    env = regions_environment(
        [WEST, EAST],
        in_region={EAST: {"health": SHORT_HEALTH}},
        bake={"duration": "1h", "poll_interval": "1m"},
        notify=notify_tables(),
    )
    aws = RegionalFakeAws.of(env, us_east_1=FakeAws(healthy_after=None))
    with receiving() as receiver:
        async with notifying_worker(time_skipping.client, aws) as task_queue:
            handle = await start_regions(
                time_skipping.client, task_queue, regions_request(env, fail_fast=fail_fast)
            )
            status = await regions_outcome(handle)
    return status, [r.body for r in receiver.received if r.kind == "webhook"]


async def test_a_region_that_fails_while_the_others_go_on_is_told_on_its_own(
    time_skipping: WorkflowEnvironment,
) -> None:
    status, hooks = await east_never_healthy(time_skipping, fail_fast=False)

    assert status.state == State.FAILED
    assert sorted(h["event"] for h in hooks) == ["failed", "failed", "switched"]
    (switched,) = [h for h in hooks if h["event"] == "switched"]
    (region_failed,) = [h for h in hooks if h["scope"] == "region"]
    (deployment_failed,) = [h for h in hooks if h["event"] == "failed" and h["scope"] != "region"]
    # The deployment's end comes last.
    assert hooks[-1] == deployment_failed
    # West switched while east waited for its health: one message for the wave, once east ended.
    assert switched["regions"] == [WEST]
    assert region_failed["scope"] == "region" and region_failed["regions"] == [EAST]
    assert region_failed["title"] == (
        "failed: game 2 → green (prod, us-east-1); the other regions go on"
    )
    assert region_failed["reason"].startswith("green was not healthy after 5m")
    assert region_failed["details"][1]["restored"]  # east's, by region
    commands = {c["action"] for c in region_failed["commands"]}
    assert commands == {"roll back", "status"}  # the rest of the deployment can still go back
    assert deployment_failed["scope"] == "deployment"
    assert deployment_failed["reason"].startswith(f"{EAST}: green was not healthy")
    assert [d["state"] for d in deployment_failed["details"]] == ["succeeded", "failed"]


async def test_with_fail_fast_a_failing_region_is_in_the_one_final_message(
    time_skipping: WorkflowEnvironment,
) -> None:
    status, hooks = await east_never_healthy(time_skipping, fail_fast=True)

    assert status.state == State.FAILED
    assert status.warnings == []
    # West had switched and was baking when east failed: no "switched" for a wave about to be
    # rolled back, and no message of east's own; one end for both regions.
    (final,) = hooks
    assert final["event"] == "failed" and final["scope"] == "deployment"
    assert {d["region"]: d["state"] for d in final["details"]} == {
        WEST: "rolled_back",
        EAST: "failed",
    }
    assert "traffic back to blue" in final["details"][0]["restored"]
