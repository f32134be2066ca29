"""``make dev``: the demo's set-up with the Web UI on http://localhost:8233, left running.

Prints what to try from another terminal and writes where everything listens to
``.local/dev/endpoints.json`` (Temporal, the Web UI, moto, deploy.toml, HAProxy's frontend for
players, its stats, metrics and Runtime API, Prometheus, the colors' URLs), so that anyone can
point their own client at it. Ctrl-C (or SIGTERM) stops everything. Temporal keeps its state in
memory, as moto does: a restart starts both afresh, so no deployment history points
at AWS resources that no longer exist.
"""

import shlex
import sys
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel

from local.data_plane.prometheus import color_selector
from local.processes import ROOT, STATE_DIR, worker_log
from local.stack import LocalStack, exit_code, local_stack
from models.colors import COLORS, Color

DEV_CONFIG = STATE_DIR / "dev" / "deploy.toml"
ENDPOINTS = STATE_DIR / "dev" / "endpoints.json"
"""Where ``make dev`` writes where everything listens (``Endpoints``)."""
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
            write_endpoints(stack)
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
    blue = stack.resources.urls["blue"]
    players = stack.data_plane.players[stack.regions[0]]
    blue = color_selector(stack.regions[0], "blue")
    blue_rate = f"sum(rate(haproxy_server_sessions_total{{{blue}}}[10s]))"
    blue_5xx = f'sum(rate(haproxy_server_http_responses_total{{{blue},code="5xx"}}[10s]))'

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

  # players and requests through HAProxy, as during a deployment: 20 players and 100
  # requests a second for 10 minutes, then what they saw; blue's players per version
  .venv/bin/python -m local.load --url {players} --players 20 --requests-per-second 100 --seconds 600
  curl -H 'X-Game-Version: 1' {blue}/connections

  # HAProxy: its stats page, its counters for Prometheus, its Runtime API
  {stack.data_plane.stats}
  curl {stack.data_plane.metrics}
  echo 'show servers state' | nc {stack.data_plane.runtime_api.replace(":", " ")}

  # Prometheus scrapes HAProxy every second: blue's requests a second, and its 5xx; the same
  # counters reach moto's CloudWatch as the ALB's metrics, which the bake's alarm watches
  curl -s {stack.data_plane.prometheus}/api/v1/query --data-urlencode {shlex.quote(f"query={blue_rate}")}
  curl -s {stack.data_plane.prometheus}/api/v1/query --data-urlencode {shlex.quote(f"query={blue_5xx}")}

Every address above is in {ENDPOINTS}, for your own clients.
Config: {stack.config_path}. Logs: {STATE_DIR / "logs"}. Ctrl-C stops everything.
"""


class Endpoints(BaseModel):
    """Where each part of ``make dev`` listens: ``.local/dev/endpoints.json``."""

    temporal_address: str
    temporal_namespace: str
    web_ui: str | None
    aws_endpoint_url: str
    aws_region: str
    deploy_toml: str
    environment: str
    players: dict[str, str]
    """Region → HAProxy's frontend: the URL players and requests use (WebSocket at /play)."""
    colors: dict[str, dict[Color, str]]
    """Region → color → the color's own URL (the gateway in front of its tasks)."""
    haproxy_stats: str
    haproxy_metrics: str
    haproxy_runtime_api: str
    """``host:port``: one command per connection, e.g. ``show stat``."""
    prometheus: str
    """Prometheus scraping HAProxy every second: its API (``/api/v1/query``) and web UI."""


def write_endpoints(stack: LocalStack, path: Path = ENDPOINTS) -> Endpoints:
    """Write where everything is to ``path`` (JSON); what was written."""
    plane = stack.data_plane
    endpoints = Endpoints(
        temporal_address=stack.temporal_address,
        temporal_namespace=stack.env["TEMPORAL_NAMESPACE"],
        web_ui=stack.ui_url,
        aws_endpoint_url=stack.env["AWS_ENDPOINT_URL"],
        aws_region=stack.regions[0],
        deploy_toml=str(stack.config_path),
        environment=stack.environment,
        players=plane.players,
        colors={
            region: {color: plane.color_url(region, color) for color in COLORS}
            for region in stack.regions
        },
        haproxy_stats=plane.stats,
        haproxy_metrics=plane.metrics,
        haproxy_runtime_api=plane.runtime_api,
        prometheus=plane.prometheus,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(endpoints.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return endpoints


def say(line: str) -> None:
    """Lines about starting and stopping, told apart from the instructions."""
    print(f"dev: {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
