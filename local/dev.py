"""``make dev``: the demo's set-up with the Web UI on http://localhost:8233, left running.

Prints what to try from another terminal; Ctrl-C (or SIGTERM) stops everything. Temporal keeps
its state in memory, as moto does: a restart starts both afresh, so no deployment history points
at AWS resources that no longer exist.
"""

import shlex
import sys
from urllib.parse import quote

from local.processes import ROOT, STATE_DIR, worker_log
from local.stack import LocalStack, exit_code, local_stack

DEV_CONFIG = STATE_DIR / "dev" / "deploy.toml"
WAITING = 'BlueGreenPhase="awaiting_approval" AND ExecutionStatus="Running"'
"""A list query on the search attributes the dev server registers: who waits for approval."""


def main() -> int:
    """Start everything, print the instructions, wait for Ctrl-C (or the worker's death)."""

    def run() -> int:
        with local_stack(
            ui=True,
            temporal_port=7233,
            ui_port=8233,
            config_path=DEV_CONFIG,
            db_file=STATE_DIR / "temporal" / "dev.db",
            say=say,
        ) as stack:
            print(instructions(stack), flush=True)
            assert stack.worker is not None, "local_stack starts a worker by default"
            code = stack.worker.wait()
            say(f"the worker exited with {code}; see {worker_log(stack.temporal_address)}")
            return 1

    return exit_code(run, say, interrupted=0)


def instructions(stack: LocalStack) -> str:
    """The exports and commands to paste into another terminal."""
    exports = "\n  ".join(
        f"export {key}={shlex.quote(value)}" for key, value in sorted(stack.env.items())
    )
    deployment_id = f"deploy-{stack.resources.service}-{stack.environment}"
    blue, green = stack.resources.urls["blue"], stack.resources.urls["green"]

    def client(*args: str) -> str:
        return shlex.join([".venv/bin/python", "client.py", *args])

    return f"""
Everything runs. Web UI: {stack.ui_url}

In another terminal, from {ROOT}:

  {exports}

  # deploy version 2 to the inactive color (green) and follow it to the end
  {client(*stack.deploy_args("2", "game:2", "--wait"))}
  {client("status", deployment_id)}
  {client("list")}

  # the next one goes to blue; keep green running after the switch for an instant switch back
  {client(*stack.deploy_args("3", "game:3", "--no-shutdown-inactive-cluster", "--wait"))}

  # the same deployments through the Temporal CLI
  .venv/bin/temporal workflow list --address {stack.temporal_address}

  # those waiting for approval (deploy with --require-approval), found by their search
  # attributes (BlueGreenService, …Environment, …Version, …Phase, …State, …Regions)
  .venv/bin/temporal workflow list --address {stack.temporal_address} --query {shlex.quote(WAITING)}
  {stack.ui_url}/namespaces/default/workflows?query={quote(WAITING)}

  # the game servers: two players on green (version 2) for 10 minutes, with 20 requests a
  # second, then what they saw; count the players per version
  .venv/bin/python -m local.load --url {green} --players 2 --version 2 --requests-per-second 20 --seconds 600
  curl -H 'X-Game-Version: 1' {blue}/connections

Config: {stack.config_path}. Logs: {STATE_DIR / "logs"}. Ctrl-C stops everything.
"""


def say(line: str) -> None:
    """Lines about starting and stopping, told apart from the instructions."""
    print(f"dev: {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
