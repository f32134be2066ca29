"""The command line of client.py: parsing, and turning arguments into validated requests."""

import argparse
import getpass
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import boto3
import botocore
from pydantic import ValidationError

from models.config import EnvironmentConfig, check_region, load_config
from models.deployment import DeploymentRequest
from models.errors import ConfigError, one_line
from models.messages import UNKNOWN, ApproveRequest, RollbackRequest
from models.multi_region import MultiRegionRequest
from models.switch import SwitchRequest

# Request fields as the command line names them, so an error points at what the user typed.
_OPTION_OF_FIELD = {
    "version": "--version",
    "image": "--image",
    "environment": "--environment",
    "by": "--by",
    "comment": "--comment",
    "reason": "--reason",
    "waves": "--region",
}
RequestT = TypeVar("RequestT")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises ConfigError (exit code 2, one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> ArgumentParser:
    """Every subcommand and option of client.py."""
    parser = ArgumentParser(
        prog="client.py",
        description="Start and follow zero-downtime blue/green deployments on Temporal.",
    )
    parser.add_argument("--profile", help="Temporal config profile (default: TEMPORAL_PROFILE)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    deploy = commands.add_parser("deploy", help="deploy a version to the inactive color")
    deploy.add_argument("--config", default="deploy.toml", help="default: %(default)s")
    deploy.add_argument("--environment", required=True)
    deploy.add_argument("--version", required=True, help="the version label, e.g. 2 or 1.4.0")
    deploy.add_argument("--image", required=True, help="the container image, e.g. repo/game:2")
    deploy.add_argument(
        "--no-switch-active-cluster",
        dest="switch_active_cluster",
        action="store_false",
        help="deploy and test the inactive color, but do not switch traffic to it",
    )
    deploy.add_argument(
        "--no-shutdown-inactive-cluster",
        dest="shutdown_inactive_cluster",
        action="store_false",
        help="leave the old color running after the switch",
    )
    deploy.add_argument(
        "--require-approval",
        action="store_true",
        help="wait for client.py approve before switching traffic (one approval for all regions)",
    )
    _add_region_options(deploy)
    _add_output_options(deploy, wait=True)

    status = commands.add_parser("status", help="show one deployment")
    status.add_argument("deployment_id", type=_not_empty)
    _add_output_options(status, wait=False)

    listing = commands.add_parser("list", help="list running and recent deployments")
    listing.add_argument("--limit", type=_at_least_one, default=20)
    _add_message_commands(commands)
    return parser


def _add_message_commands(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    approve = commands.add_parser("approve", help="let a deployment waiting for approval switch")
    approve.add_argument("deployment_id", type=_not_empty, help="e.g. deploy-game-prod")
    _add_by_option(approve)
    approve.add_argument("--comment", default="", help="recorded with the approval")

    rollback = commands.add_parser("rollback", help="stop a deployment and put production back")
    rollback.add_argument("deployment_id", type=_not_empty, help="e.g. deploy-game-prod")
    rollback.add_argument("--reason", required=True, type=_not_empty, help="recorded and shown")
    _add_by_option(rollback)
    _add_output_options(rollback, wait=False)

    switch = commands.add_parser(
        "switch", help="send traffic back to the other color, still running after a deployment"
    )
    switch.add_argument("--config", default="deploy.toml", help="default: %(default)s")
    switch.add_argument("--environment", required=True)
    switch.add_argument(
        "--region",
        type=_region,
        help="the region to switch (needed when the environment has several)",
    )
    switch.add_argument("--reason", default="", help="recorded with the switch")
    _add_by_option(switch)
    _add_output_options(switch, wait=False)


def _add_region_options(deploy: argparse.ArgumentParser) -> None:
    deploy.add_argument(
        "--region",
        action="append",
        default=[],
        type=_region,
        help="deploy to this region of the environment only (repeatable; default: all of them)",
    )
    deploy.add_argument(
        "--switch-together",
        action="store_true",
        help="no region of a wave switches before all of the wave are ready to (one region: no effect)",
    )
    deploy.add_argument(
        "--no-fail-fast",
        dest="fail_fast",
        action="store_false",
        help="a region that fails does not roll back the others (later waves still never start;"
        " one region: no effect)",
    )


def _region(value: str) -> str:
    try:
        return check_region(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _aws_regions_only(path: str, name: str, environment: EnvironmentConfig) -> None:
    """Refuse a region of the right shape that AWS does not have (``us-mars-1``).

    Deployed, every call there would fail with a connection error, which is retried as if the
    network were down. Checked here, not in models/config.py: that model is also decoded in
    workflow code, which must not read botocore's region data.
    """
    session = boto3.session.Session()
    known = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ecs", partition_name=partition)
    }
    for region in environment.all_regions():
        if region not in known:
            raise ConfigError(
                f"{path}: environments.{name}: {region!r} is not an AWS region"
                f" (none of that name in botocore {botocore.__version__})"
            )


def _add_by_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by", type=_not_empty, help="who asks (default: the CI actor or the local user)"
    )


def _not_empty(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def _add_output_options(parser: argparse.ArgumentParser, wait: bool) -> None:
    if wait:
        parser.add_argument(
            "--wait",
            action="store_true",
            help="follow the deployment to its end; the exit code tells how it ended",
        )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def deployment_request(args: argparse.Namespace) -> DeploymentRequest | MultiRegionRequest:
    """The request ``client.py deploy`` starts, validated before anything is sent.

    A one-region environment starts the one-region deployment, as it always has (``--region``
    may only name its region; ``--switch-together`` and ``--no-fail-fast`` change nothing with
    one region). An environment with ``regions`` or ``waves`` starts a multi-region deployment
    over the regions ``--region`` selects (all of them without it).
    """
    config = load_config(args.config)
    target = config.environment(args.environment)
    _aws_regions_only(args.config, args.environment, target)
    waves = target.selected_waves(args.region)
    fields: dict[str, Any] = {
        "service": config.service,
        "environment": args.environment,
        "version": args.version,
        "image": args.image,
        "switch_active_cluster": args.switch_active_cluster,
        "shutdown_inactive_cluster": args.shutdown_inactive_cluster,
        "require_approval": args.require_approval,
        "requested_by": requested_by(),
    }
    if target.is_single_region():
        return _validated(lambda: DeploymentRequest(target=target, **fields))
    return _validated(
        lambda: MultiRegionRequest(
            waves=[[target.for_region(region) for region in wave] for wave in waves],
            switch_together=args.switch_together,
            fail_fast=args.fail_fast,
            **fields,
        )
    )


def approve_request(args: argparse.Namespace) -> ApproveRequest:
    """The ``approve`` message of ``client.py approve``."""
    return _validated(lambda: ApproveRequest(by=args.by or requested_by(), comment=args.comment))


def rollback_request(args: argparse.Namespace) -> RollbackRequest:
    """The ``rollback`` message of ``client.py rollback``."""
    return _validated(lambda: RollbackRequest(reason=args.reason, by=args.by or requested_by()))


def switch_request(args: argparse.Namespace) -> SwitchRequest:
    """The SwitchBack input of ``client.py switch``, validated before anything is sent."""
    config = load_config(args.config)
    _aws_regions_only(args.config, args.environment, config.environment(args.environment))
    target = _switch_target(args.environment, config.environment(args.environment), args.region)
    return _validated(
        lambda: SwitchRequest(
            service=config.service,
            environment=args.environment,
            target=target,
            requested_by=args.by or requested_by(),
            reason=args.reason,
        )
    )


def _switch_target(
    name: str, environment: EnvironmentConfig, region: str | None
) -> EnvironmentConfig:
    """The one region ``switch`` acts on: the environment's own, or ``--region`` of several."""
    if region is None and not environment.is_single_region():
        raise ConfigError(
            f"--region: {name} has several regions ({', '.join(environment.all_regions())});"
            " name the one to switch"
        )
    environment.selected_waves([region] if region else [])  # it must be one of them
    return environment.for_region(region) if region else environment


def _validated(build: Callable[[], RequestT]) -> RequestT:
    """``build()``, its first validation error as a ConfigError naming the option."""
    try:
        return build()
    except ValidationError as err:
        field = str(err.errors()[0]["loc"][0])
        message = one_line(err).split(": ", 1)[1]
        raise ConfigError(f"{_OPTION_OF_FIELD.get(field, field)}: {message}") from None


def requested_by() -> str:
    """Who asks: the CI job when there is one, else the local user."""
    for variable in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except OSError:
        return UNKNOWN
