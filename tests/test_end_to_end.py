"""client.py → Temporal dev server → worker → moto and the sample game service, for real."""

import json
import signal
import subprocess
from collections.abc import Iterator

import pytest

from local.processes import BIN, worker, worker_log
from local.stack import LocalStack
from local.state import mismatches, read_state
from tests.live_stack import client_output, quiet_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local environment on free ports, without the Web UI; its deploy.toml of its
    own (not the demo's, which a ``make demo`` or another test may be writing)."""
    with quiet_stack(tmp_path_factory.mktemp("end-to-end"), players=3, game_seconds=2) as s:
        yield s


def test_deploy_version_2_over_version_1_end_to_end(stack: LocalStack) -> None:
    environment = stack.environment_config()
    before = read_state(environment)
    assert before.ssm.active_color == "blue"
    assert mismatches(before, "blue", "1", environment.desired_count) == []

    result = client_output(stack, *stack.deploy_args("2", "game:2", "--wait", "--json"))

    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)
    assert final["state"] == "succeeded"
    assert final["exit_code"] == 0
    assert final["phase_reached"] == "cleaning_up"
    assert (final["active_color_before"], final["active_color_after"]) == ("blue", "green")
    assert final["versions_before"] == {"blue": "1", "green": None}
    assert final["versions_after"] == {"blue": "1", "green": "2"}
    assert [r["passed"] for r in final["integration_results"]] == [True]
    # The blue players were told to reconnect and left; the drain saw them go.
    assert final["last_connections"]["count"] == 0
    assert final["connection_checks"] >= 1
    # Each phase was printed (to stderr: stdout is the JSON document) as it was entered.
    for phase in (
        "deploying",
        "waiting_for_health",
        "testing",
        "switching",
        "draining",
        "cleaning_up",
    ):
        assert f" {phase} " in result.stderr

    after = read_state(environment)
    assert mismatches(after, "green", "2", environment.desired_count) == []
    assert after.weights.green > 0 and after.weights.blue == 0
    assert after.services["blue"].desired_count == 0

    shown = client_output(stack, "status", final["deployment_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "succeeded"

    listed = client_output(stack, "list")
    assert listed.returncode == 0, listed.stderr
    assert final["deployment_id"] in listed.stdout and "COMPLETED" in listed.stdout


def test_a_second_deployment_while_one_runs_is_refused_naming_it(stack: LocalStack) -> None:
    # A task queue no worker polls: the first deployment stays running for as long as we like.
    # (client.py gives up waiting for a worker to let it run after a second: exit 5.)
    idle = {"BLUEGREEN_TASK_QUEUE": "no-worker-here", "BLUEGREEN_NO_WORKER_TIMEOUT": "1"}
    first = client_output(stack, *stack.deploy_args("3", "game:3"), env=idle)
    assert first.returncode == 5, first.stderr
    assert first.stdout.startswith("started deployment deploy-game-prod"), first.stdout
    try:
        second = client_output(stack, *stack.deploy_args("4", "game:4"), env=idle)

        assert second.returncode == 4, second.stderr
        assert "client.py: refused: deployment deploy-game-prod" in second.stderr
        assert "of version 3" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        subprocess.run(
            [
                str(BIN / "temporal"),
                "workflow",
                "terminate",
                "--address",
                stack.temporal_address,
                "--workflow-id",
                "deploy-game-prod",
                "--reason",
                "end of test",
            ],
            check=True,
            capture_output=True,
        )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_worker_stops_cleanly_on_a_signal(stack: LocalStack, sig: signal.Signals) -> None:
    env = stack.env | {"BLUEGREEN_TASK_QUEUE": f"stop-test-{sig.name}"}
    with worker(env) as process:
        process.send_signal(sig)
        assert process.wait(timeout=60) == 0
    log = worker_log(stack.temporal_address).read_text()
    assert "worker stopped" in log
    assert "Traceback" not in log
