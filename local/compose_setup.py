"""The demo's AWS resources in moto and their deploy.toml, for docker-compose.yml.

    python -m local.compose_setup --config /demo/deploy.toml \\
        --blue-url http://game-blue:8080 --green-url http://game-green:8080 [--region us-west-2]

The compose file's one-shot ``setup`` service runs it once moto has started. It waits until moto
answers, creates what ``make demo`` creates (``local/aws_resources.py``: two ECS clusters and
services, a task family, an ALB with two weighted target groups, a 5xx alarm, the SSM parameters
with blue active on version 1), with each color's URL pointing at the compose file's sample game
server for that color, and writes the deploy.toml that describes them to ``--config`` (a volume
``client.py`` reads too). Run again (``docker compose up`` restarts it), it leaves moto and the
file alone when both are there: a deployment may have changed the resources since. When only
one of them is left (moto restarted, or the volume removed), it starts over: moto reset, the
resources and the file made again.

It only ever talks to the endpoint in ``AWS_ENDPOINT_URL`` and refuses to run without one: it is
not a way to create resources in a real AWS account.
"""

import argparse
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.exceptions import BotoCoreError

from local.aws_resources import create_demo_resources, write_demo_config

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

T = TypeVar("T")
SERVICE = "game"
ENVIRONMENT = "prod"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.compose_setup",
        description="Create the demo's AWS resources in moto and write their deploy.toml.",
    )
    parser.add_argument("--config", type=Path, required=True, help="where to write deploy.toml")
    parser.add_argument("--blue-url", required=True, help="blue's sample game server")
    parser.add_argument("--green-url", required=True, help="green's sample game server")
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_DEFAULT_REGION") or "us-west-2",
        help="default: AWS_DEFAULT_REGION, else %(default)s",
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for moto (default: 60)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Set up once; exit 0 when the resources and deploy.toml are there, 1 when moto never
    answered, 2 without AWS_ENDPOINT_URL."""
    args = parse_args(argv)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        say("refused: AWS_ENDPOINT_URL is not set; this creates the demo's resources in moto only")
        return 2
    ssm: SSMClient = boto3.client("ssm", region_name=args.region)
    parameter = f"/{SERVICE}/{ENVIRONMENT}/current_active_color"
    try:
        exists = wait_for_moto(lambda: _exists(ssm, parameter), args.timeout)
    except TimeoutError as err:
        say(f"FAILED: moto at {endpoint} {err}")
        return 1
    if exists and args.config.exists():
        say(f"already set up: {parameter} in moto, {args.config}; nothing changed")
        return 0
    if exists:
        say(f"{args.config} is gone but moto kept its resources: resetting moto")
        reset_moto(endpoint)
    resources = create_demo_resources(
        args.region,
        blue_url=args.blue_url,
        green_url=args.green_url,
        service=SERVICE,
        environment=ENVIRONMENT,
    )
    write_demo_config(args.config, resources)
    say(
        f"created in moto ({args.region}): clusters {', '.join(resources.clusters.values())},"
        f" an ALB, the alarm {', '.join(resources.alarm_names)}, SSM {resources.ssm_prefix}"
        " (blue active on version 1)"
    )
    say(f"wrote {args.config}; deploy version 2 with:")
    say(
        "  docker compose run --rm client deploy --environment prod --version 2 --image game:2"
        " --wait"
    )
    return 0


def _exists(ssm: "SSMClient", name: str) -> bool:
    try:
        ssm.get_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


def wait_for_moto(call: Callable[[], T], timeout: float) -> T:
    """``call``'s answer once moto answers it; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except BotoCoreError as err:  # connection refused while moto starts
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not answering after {timeout:.0f}s: {err}") from None
            time.sleep(0.5)


def reset_moto(endpoint: str) -> None:
    """Forget every resource moto holds (moto's own reset API)."""
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def say(line: str) -> None:
    print(f"compose_setup: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
