"""approve, rollback and switch — with client.py and with the Temporal CLI — on the dev server.

Updates need the real server (the time-skipping one does not support them), so the module starts
one Temporal dev server and one in-process worker running both workflows over FakeAws. Each test
holds a deployment in the phase it is about with the FakeAws knobs and its configuration:
``require_approval`` waits for approval, a one-hour bake holds the bake, a connection count that
never reaches zero holds the drain. client.py and the Temporal CLI run as subprocesses.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from cli import deployment_kinds, deployments, render
from cli.deployments import Handle
from cli.render import as_json, summary
from models.deployment import DeploymentStatus, FailureReport, Phase, State
from models.switch import SwitchRequest
from tests import dev_server
from tests.dev_server import WAIT, Done, Server, refused
from tests.factories import ENVIRONMENT, deployment_request, environment
from tests.workflows.fake_aws import FakeAws
from workflows.deployment import BlueGreenDeployment
from workflows.switch_back import SwitchBack

QUEUE = f"messages-{uuid.uuid4().hex[:8]}"
HOLD_BAKE = {"duration": "1h", "poll_interval": "1m"}


@pytest.fixture(scope="module")
async def server(temporal: str) -> AsyncIterator[Server[FakeAws]]:
    """One worker for the module, FakeAws in place of the AWS activities."""
    async with dev_server.serving(temporal, FakeAws(), QUEUE) as served:
        yield served


@dataclass
class Lab:
    """One test's view: a fresh FakeAws state, helpers, and the deployments to clean up."""

    server: Server[FakeAws]
    tmp: Path
    started: list[Handle] = field(default_factory=list)

    @property
    def aws(self) -> FakeAws:
        return self.server.aws

    async def deploy(self, name: str, **overrides: Any) -> Handle:
        """Start deploying game 2 to environment ``name`` (deployment deploy-game-NAME)."""
        target = environment(**overrides.pop("target", {}))
        request = deployment_request(target, environment=name, **overrides)
        handle = await deployment_kinds.start(self.server.client, request, QUEUE)
        self.started.append(handle)
        return handle

    async def status(self, handle: Handle) -> DeploymentStatus:
        return await handle.query(BlueGreenDeployment.status)

    async def wait_for(
        self, handle: Handle, check: Callable[[DeploymentStatus], bool], what: str
    ) -> DeploymentStatus:
        """Poll the status query until ``check`` holds."""
        return await dev_server.wait_for(lambda: self.status(handle), check, what)

    async def wait_for_phase(self, handle: Handle, phase: Phase) -> DeploymentStatus:
        return await self.wait_for(handle, lambda s: s.phase == phase, f"in {phase.value}")

    async def client_py(self, *args: str) -> Done:
        """Run client.py against the dev server and this module's task queue."""
        return await dev_server.client_py(self.server.address, QUEUE, *args)

    async def temporal_cli(self, *args: str) -> Done:
        """Run the Temporal CLI against the dev server."""
        return await dev_server.temporal_cli(self.server.address, *args)

    def config_file(self, name: str, **overrides: Any) -> Path:
        """A deploy.toml with environment ``name`` (the test environment, ``overrides`` on top)."""
        return dev_server.write_config(self.tmp / "deploy.toml", {name: ENVIRONMENT | overrides})


@pytest.fixture
async def lab(server: Server[FakeAws], tmp_path: Path) -> AsyncIterator[Lab]:
    """FakeAws back to blue active on version 1; running deployments terminated afterwards."""
    vars(server.aws).update(vars(FakeAws()))
    lab = Lab(server, tmp_path)
    try:
        yield lab
    finally:
        await dev_server.terminate_running(list(lab.started))


def blue_serves_alone(aws: FakeAws) -> None:
    """Production as before the deployment: blue active with all traffic, green at zero."""
    assert aws.active == "blue"
    assert aws.weights == {"blue": 100, "green": 0}
    assert aws.desired == {"blue": 2, "green": 0}
    assert aws.versions == {"blue": "1", "green": None}


async def ended(handle: Handle) -> DeploymentStatus:
    return await asyncio.wait_for(deployments.final_status(handle), WAIT)


def changes(aws: FakeAws, since: int) -> list[str]:
    """The activities called after the first ``since`` that change something."""
    reads = ("read_color_state", "read_router_weights", "check_health")
    return [name for name in aws.names()[since:] if name not in reads]


# --- approve ----------------------------------------------------------------------------------


async def test_approve_with_client_py_lets_the_deployment_switch_once(lab: Lab) -> None:
    handle = await lab.deploy("approve", require_approval=True, target={"bake": HOLD_BAKE})
    waiting = await lab.wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    assert waiting.awaiting_approval_since and waiting.awaiting_approval_until
    assert "waiting for approval since" in summary(waiting)
    assert lab.aws.active == "blue"

    done = await lab.client_py(
        "approve", handle.id, "--by", "alice", "--comment", "canary looks good"
    )

    assert done.returncode == 0, done
    assert done.stdout == f"approved {handle.id} as alice: switching blue → green\n"
    baking = await lab.wait_for_phase(handle, Phase.BAKING)
    assert baking.approval is not None
    assert (baking.approval.by, baking.approval.comment) == ("alice", "canary looks good")
    assert waiting.awaiting_approval_since <= baking.approval.at
    assert Phase.SWITCHING in [entry.phase for entry in baking.phases]
    assert (lab.aws.active, lab.aws.weights) == ("green", {"blue": 0, "green": 100})
    shown = summary(baking)
    assert "approved by alice at " in shown and ": canary looks good" in shown
    assert "baking until " in shown
    assert json.loads(as_json(baking))["approval"]["by"] == "alice"
    # The history keeps the approval too: the accepted update with who and why.
    accepted = [
        event.workflow_execution_update_accepted_event_attributes.accepted_request
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert [a.input.name for a in accepted] == ["approve"]
    [payload] = accepted[0].input.args.payloads
    assert json.loads(payload.data) == {"by": "alice", "comment": "canary looks good"}

    again = await lab.client_py("approve", handle.id, "--by", "bob")

    refused(again, "already approved by alice at ")
    assert (await lab.status(handle)).approval == baking.approval


async def test_approve_while_nothing_waits_is_refused(lab: Lab) -> None:
    handle = await lab.deploy("noapproval", target={"bake": HOLD_BAKE})
    await lab.wait_for_phase(handle, Phase.BAKING)

    done = await lab.client_py("approve", handle.id, "--by", "alice")

    refused(done, "not waiting for approval (phase baking, state running)")
    status = await lab.status(handle)
    assert status.approval is None and status.phase == Phase.BAKING


async def test_approve_by_the_starter_is_refused_with_four_eyes(lab: Lab) -> None:
    handle = await lab.deploy(
        "foureyes",
        require_approval=True,
        requested_by="alice",
        target={"bake": HOLD_BAKE, "approval": {"require_different_approver": True}},
    )
    await lab.wait_for_phase(handle, Phase.AWAITING_APPROVAL)

    own = await lab.client_py("approve", handle.id, "--by", "alice")
    waiting = await lab.status(handle)
    other = await lab.client_py("approve", handle.id, "--by", "bob")

    refused(
        own,
        "alice started this deployment; approval.require_different_approver asks someone else"
        " to approve it",
    )
    assert (waiting.phase, waiting.approval) == (Phase.AWAITING_APPROVAL, None)
    assert other.returncode == 0, other
    baking = await lab.wait_for_phase(handle, Phase.BAKING)
    assert baking.approval is not None and baking.approval.by == "bob"


async def test_approve_of_an_unknown_deployment_is_refused(lab: Lab) -> None:
    done = await lab.client_py("approve", "deploy-game-nowhere")

    refused(done, "there is no deployment deploy-game-nowhere")


# --- rollback ---------------------------------------------------------------------------------


async def test_rollback_in_bake_with_client_py_puts_blue_back(lab: Lab) -> None:
    handle = await lab.deploy("bake", target={"bake": HOLD_BAKE})
    await lab.wait_for_phase(handle, Phase.BAKING)
    assert lab.aws.active == "green"

    done = await lab.client_py("rollback", handle.id, "--reason", "players desync", "--by", "bob")

    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert (
        lines[0] == f"rollback of {handle.id} from bob accepted in baking: putting production back"
    )
    assert " compensating " in lines[1] and " done " in lines[2]
    assert f"deployment {handle.id}: ROLLED_BACK" in done.stdout
    assert "rollback requested by bob at " in done.stdout
    assert "rolled back in baking: rollback requested by bob: players desync" in done.stdout
    assert "  restored: traffic back to blue" in done.stdout
    final = await ended(handle)
    assert final.state == State.ROLLED_BACK
    assert final.rollback is not None
    assert (final.rollback.by, final.rollback.reason) == ("bob", "players desync")
    assert final.rollback.phase == Phase.BAKING
    blue_serves_alone(lab.aws)


async def test_rollback_while_draining_prints_one_json_document(lab: Lab) -> None:
    lab.aws.connections = [5]  # the old color's players never leave: the drain holds
    handle = await lab.deploy("drain")
    await lab.wait_for_phase(handle, Phase.DRAINING)

    done = await lab.client_py("rollback", handle.id, "--reason", "desync", "--json")

    assert done.returncode == 0, done
    document = json.loads(done.stdout)
    assert (document["state"], document["exit_code"]) == ("rolled_back", 0)
    assert document["rollback"]["phase"] == "draining"
    assert document["report"]["compensation"][0] == "traffic back to blue"
    assert "accepted in draining" in done.stderr
    blue_serves_alone(lab.aws)


async def test_rollback_while_waiting_for_approval_never_touches_blue(lab: Lab) -> None:
    handle = await lab.deploy("gate", require_approval=True)
    await lab.wait_for_phase(handle, Phase.AWAITING_APPROVAL)

    done = await lab.client_py("rollback", handle.id, "--reason", "wrong build")

    assert done.returncode == 0, done
    assert "accepted in awaiting_approval" in done.stdout
    final = await ended(handle)
    assert final.state == State.ROLLED_BACK
    assert "switch_traffic" not in lab.aws.names()
    blue_serves_alone(lab.aws)


async def test_rollback_once_cleanup_started_is_refused(lab: Lab) -> None:
    # scale_to_zero keeps failing (retryably): the deployment stays in cleaning_up.
    throttled = [ApplicationError("Throttling: slow down", type="Throttling") for _ in range(8)]
    lab.aws.failures["scale_to_zero"] = throttled
    handle = await lab.deploy("cleanup")
    await lab.wait_for_phase(handle, Phase.CLEANING_UP)

    done = await lab.client_py("rollback", handle.id, "--reason", "too late")

    refused(
        done,
        "blue is already being shut down, so traffic cannot go back to it; deploy version 1 again",
    )
    status = await lab.status(handle)
    assert status.rollback is None and status.state == State.RUNNING


async def test_after_a_normal_deployment_rollback_approve_and_switch_are_refused(
    lab: Lab,
) -> None:
    handle = await lab.deploy("done")
    assert (await ended(handle)).state == State.SUCCEEDED
    assert lab.aws.desired["blue"] == 0
    calls = len(lab.aws.calls)

    rollback = await lab.client_py("rollback", handle.id, "--reason", "bug")
    approve = await lab.client_py("approve", handle.id)
    switch = await lab.client_py(
        "switch", "--config", str(lab.config_file("done")), "--environment", "done"
    )

    refused(rollback, f"{handle.id} already ended (succeeded); to go back, deploy version 1 again")
    refused(approve, f"{handle.id} already ended (succeeded); nothing waits for approval")
    refused(switch, "blue is not running (desired count 0)")
    assert (lab.aws.active, lab.aws.weights) == ("green", {"blue": 0, "green": 100})
    assert changes(lab.aws, calls) == []


# --- switch -----------------------------------------------------------------------------------


async def test_switch_goes_back_to_the_color_a_deployment_kept_running(lab: Lab) -> None:
    handle = await lab.deploy("kept", shutdown_inactive_cluster=False)
    assert (await ended(handle)).state == State.SUCCEEDED
    assert (lab.aws.active, lab.aws.desired) == ("green", {"blue": 2, "green": 2})
    config = str(lab.config_file("kept"))

    rollback = await lab.client_py("rollback", handle.id, "--reason", "bug")
    done = await lab.client_py(
        "switch", "--config", config, "--environment", "kept", "--reason", "bug"
    )

    refused(rollback, f"{handle.id} already ended (succeeded) and blue still runs version 1")
    assert "client.py switch --environment kept" in rollback.stderr
    assert done.returncode == 0, done
    assert (
        done.stdout == "switched game kept: green → blue (blue runs version 1; healthy: healthy)\n"
    )
    assert (lab.aws.active, lab.aws.weights) == ("blue", {"blue": 100, "green": 0})
    assert lab.aws.desired == {"blue": 2, "green": 2}
    switch = lab.server.client.get_workflow_handle("switch-game-kept")
    assert (await switch.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_switch_the_router_refuses_puts_ssm_back_and_exits_1(lab: Lab) -> None:
    handle = await lab.deploy("denied", shutdown_inactive_cluster=False)
    assert (await ended(handle)).state == State.SUCCEEDED
    denied = ApplicationError(
        "ModifyListener: AccessDenied", type="AccessDenied", non_retryable=True
    )
    lab.aws.failures["switch_traffic"] = [denied]

    done = await lab.client_py(
        "switch", "--config", str(lab.config_file("denied")), "--environment", "denied", "--json"
    )

    assert done.returncode == 1, done
    assert done.stderr.startswith("client.py: switch-game-denied: switch failed: ")
    assert "AccessDenied" in done.stderr and "(SSM put back to green)" in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert (lab.aws.active, lab.aws.weights) == ("green", {"blue": 0, "green": 100})


async def test_switch_while_a_deployment_runs_is_refused(lab: Lab) -> None:
    handle = await lab.deploy("busy", target={"bake": HOLD_BAKE})
    await lab.wait_for_phase(handle, Phase.BAKING)
    calls = len(lab.aws.calls)

    done = await lab.client_py(
        "switch", "--config", str(lab.config_file("busy")), "--environment", "busy"
    )

    refused(done, f"deployment {handle.id} (phase baking) is still running")
    assert changes(lab.aws, calls) == []


async def test_deploy_while_a_switch_runs_is_refused(lab: Lab) -> None:
    # A switch on a task queue no worker polls stays running for as long as the test needs.
    switching = await lab.server.client.start_workflow(
        SwitchBack.run,
        SwitchRequest(service="game", environment="switching", target=environment()),
        id=deployments.switch_id("game", "switching"),
        task_queue=f"no-worker-{uuid.uuid4()}",
    )
    try:
        done = await lab.client_py(
            "deploy",
            "--config",
            str(lab.config_file("switching")),
            "--environment",
            "switching",
            "--version",
            "2",
            "--image",
            "game:2",
        )
    finally:
        await switching.terminate("end of test")

    refused(done, "switch-game-switching is switching traffic right now")
    assert lab.aws.calls == []


# --- the Temporal CLI -------------------------------------------------------------------------


async def test_temporal_cli_update_approves_like_client_py(lab: Lab) -> None:
    handle = await lab.deploy("cliapprove", require_approval=True, target={"bake": HOLD_BAKE})
    await lab.wait_for_phase(handle, Phase.AWAITING_APPROVAL)
    update = ["workflow", "update", "execute", "--workflow-id", handle.id, "--name", "approve"]

    done = await lab.temporal_cli(*update, "--input", '{"by": "alice", "comment": "ok"}')

    assert done.returncode == 0, done
    baking = await lab.wait_for_phase(handle, Phase.BAKING)
    assert baking.approval is not None
    assert (baking.approval.by, baking.approval.comment) == ("alice", "ok")
    assert lab.aws.active == "green"

    again = await lab.temporal_cli(*update, "--input", '{"by": "bob"}')

    assert again.returncode != 0
    assert "already approved by alice at " in again.stderr + again.stdout
    assert "ApprovalRefused" in again.stderr + again.stdout


async def test_temporal_cli_signal_rolls_back_like_client_py(lab: Lab) -> None:
    handle = await lab.deploy("clisignal", target={"bake": HOLD_BAKE})
    await lab.wait_for_phase(handle, Phase.BAKING)
    signal = ["workflow", "signal", "--workflow-id", handle.id]

    ignored = await lab.temporal_cli(*signal, "--name", "approve", "--input", '{"by": "carol"}')
    assert ignored.returncode == 0, ignored
    status = await lab.wait_for(handle, lambda s: bool(s.warnings), "warned")
    assert status.warnings == [
        "ignored approve from carol: not waiting for approval (phase baking, state running)"
    ]

    done = await lab.temporal_cli(
        *signal, "--name", "rollback", "--input", '{"reason": "bad", "by": "bob"}'
    )

    assert done.returncode == 0, done
    final = await ended(handle)
    assert final.state == State.ROLLED_BACK
    assert final.rollback is not None
    assert (final.rollback.by, final.rollback.reason, final.rollback.phase) == (
        "bob",
        "bad",
        Phase.BAKING,
    )
    assert final.report is not None and final.report.reason == "rollback requested by bob: bad"
    blue_serves_alone(lab.aws)


# --- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "compensation_errors", "code"),
    [
        (State.ROLLED_BACK, [], 0),
        (State.FAILED, ["traffic back to blue: AccessDenied"], 1),
        (State.FAILED, [], 1),
        (State.SUCCEEDED, [], 1),
    ],
)
def test_rollback_exits_0_only_when_production_is_back(
    state: State, compensation_errors: list[str], code: int
) -> None:
    final = DeploymentStatus(
        deployment_id="deploy-game-prod",
        service="game",
        environment="prod",
        region="us-west-2",
        version="2",
        image="game:2",
        state=state,
        report=FailureReport(
            phase=Phase.BAKING, reason="rollback", compensation_errors=compensation_errors
        ),
    )
    assert render.rollback_exit_code(final) == code
