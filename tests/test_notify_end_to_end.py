"""Notifications end to end: client.py → dev server → worker.py (a process, holding the URLs in
its environment) → a local receiver standing in for Slack and a webhook.

A deployment started with ``--require-approval`` tells Slack it waits, with the command that
approves it; approved, it tells the switch and the success. The webhook URLs are nowhere but in
the worker's environment: not in the history, the status, the config file or the worker's log.
"""

import json
from collections.abc import Callable, Iterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from local.notify_receiver import (
    SLACK_ENV,
    SLACK_PATH,
    WEBHOOK_ENV,
    NotificationReceiver,
    Received,
    worker_env,
)
from local.processes import free_port, worker_log
from local.stack import LocalStack, local_stack
from tests.live_stack import client_output
from tests.notifying import history_text

DEPLOYMENT = "deploy-game-prod"


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, receiver: NotificationReceiver
) -> Iterator[LocalStack]:
    """The local environment without players or the Web UI, notifying ``receiver``."""
    with local_stack(
        ui=False,
        temporal_port=free_port(),
        ui_port=None,
        players=0,
        config_path=tmp_path_factory.mktemp("notify") / "deploy.toml",
        notifications=receiver,
    ) as s:
        yield s


def has(kind: str, event: str) -> Callable[[list[Received]], bool]:
    def enough(received: list[Received]) -> bool:
        return any(r.kind == kind and r.event == event for r in received)

    return enough


def assert_no_webhook_url(text: str, receiver: NotificationReceiver, where: str) -> None:
    for secret in [*worker_env(receiver).values(), SLACK_PATH, f"127.0.0.1:{receiver.port}"]:
        assert secret not in text, f"{secret} in {where}"


@pytest.mark.timeout(240)
async def test_awaiting_approval_reaches_slack_with_the_approve_command_and_no_url_leaks(
    stack: LocalStack, receiver: NotificationReceiver
) -> None:
    started = client_output(
        stack, *stack.deploy_args("2", "game:2", "--require-approval"), timeout=120
    )
    assert started.returncode == 0, started.stderr

    waiting = await receiver.arrived(has("slack", "awaiting_approval"), timeout=120)
    (message,) = [r for r in waiting if r.event == "awaiting_approval"]
    assert message.path == SLACK_PATH
    assert message.text() == "awaiting approval: game 2 → green (prod, us-west-2)"
    everything = message.everything()
    assert f"python client.py approve {DEPLOYMENT}" in everything
    assert (
        f"temporal workflow update execute --workflow-id {DEPLOYMENT} --name approve" in everything
    )
    assert f'python client.py rollback {DEPLOYMENT} --reason "what is wrong"' in everything

    temporal = await Client.connect(stack.temporal_address, data_converter=pydantic_data_converter)
    handle = temporal.get_workflow_handle(DEPLOYMENT)
    so_far = history_text(await handle.fetch_history())
    assert SLACK_ENV in so_far  # the history does hold the notice, and the variable's name
    assert_no_webhook_url(so_far, receiver, "the history while it waits")

    # The very command the message gives.
    approved = client_output(stack, "approve", DEPLOYMENT, "--by", "bob", timeout=120)
    assert approved.returncode == 0, approved.stderr
    # Each target is told on its own: wait for both to hear of the end.
    await receiver.arrived(
        lambda seen: has("webhook", "succeeded")(seen) and has("slack", "succeeded")(seen),
        timeout=120,
    )
    got = [(r.kind, r.event) for r in receiver.received]
    assert got.count(("slack", "switched")) == 1 and got.count(("slack", "succeeded")) == 1
    assert ("webhook", "switched") not in got  # the webhook hears of the ends only

    status = client_output(stack, "status", DEPLOYMENT, "--json", timeout=120)
    assert json.loads(status.stdout)["state"] == "succeeded", status.stdout
    assert json.loads(status.stdout)["warnings"] == []
    everything_recorded = history_text(await handle.fetch_history())
    assert WEBHOOK_ENV in everything_recorded
    assert_no_webhook_url(everything_recorded, receiver, "the history")
    assert_no_webhook_url(status.stdout, receiver, "the status")
    assert_no_webhook_url(stack.config_path.read_text(), receiver, "deploy.toml")
    assert_no_webhook_url(worker_log(stack.temporal_address).read_text(), receiver, "the log")


def test_the_local_environment_notifies_slack_of_everything_and_the_webhook_of_the_ends(
    stack: LocalStack,
) -> None:
    targets = {t.kind: t for t in stack.environment_config().notify}
    assert (targets["slack"].url_env, targets["webhook"].url_env) == (SLACK_ENV, WEBHOOK_ENV)
    assert len(targets["slack"].events) == 6
    assert targets["webhook"].events == ["succeeded", "failed", "rolled_back", "needs_a_person"]
