"""Bad input to client.py: one line naming the problem, exit code 2, nothing started.

Every bad-input case runs client.py's ``main`` (in this process, as ``python client.py`` does
but without starting an interpreter per case) with a TEMPORAL_ADDRESS of the test's own that
counts connections: nothing can be started without connecting to Temporal, so no connection is
the proof that nothing was. A few cases run ``python client.py`` as CI does, as a process. The
good-input cases at the end show that the listener does notice a client that goes on (it
connects, and exits 3 when the listener hangs up).

An SSM parameter holding an unknown color can only be seen once the deployment runs: the last
test deploys against one with the real activities and checks the one-line reason and that AWS
is as it was.
"""

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import boto3
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

import client
from local.aws_resources import DemoResources
from local.processes import ROOT, environ, free_port
from models.colors import COLORS
from models.config import load_config
from tests import dev_server
from tests.workflows.on_moto import demo_resources, environment_fields, real_worker

EXAMPLE = ROOT / "deploy.example.toml"
GOOD = ["--environment", "prod", "--version", "2", "--image", "repo/game:2"]


class Listener:
    """A TCP port standing in for Temporal that counts who connects and hangs up on them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._count = 0
        self._stop = threading.Event()
        # Hanging up at once makes a client that got this far fail fast instead of waiting.
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self._count += 1
            connection.close()

    def connections(self) -> int:
        """Everyone who connected so far, including those the kernel queued but not yet handed
        over (a client can connect and exit between two accepts); stops listening."""
        self.close()
        self._socket.setblocking(False)
        while True:
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, OSError):
                return self._count
            self._count += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as listening:
        yield listening


def run_client(
    *args: str,
    config_text: str | None = None,
    tmp: Path | None = None,
    extra_env: dict[str, str] | None = None,
    address: str | None = None,
    as_process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """client.py's ``main`` with these arguments, or ``python client.py`` as CI runs it
    (``as_process``); without ``address``, Temporal is a port where nothing listens."""
    if config_text is not None:
        assert tmp is not None
        path = tmp / "deploy.toml"
        path.write_text(config_text)
        args = ("deploy", "--config", str(path), *args)
    env = {
        "TEMPORAL_ADDRESS": address or f"127.0.0.1:{free_port()}",
        # A developer's own profiles must not decide what these tests see.
        "TEMPORAL_CONFIG_FILE": str(ROOT / ".local" / f"no-such-{uuid.uuid4()}.toml"),
        **(extra_env or {}),
    }
    if as_process:
        return subprocess.run(
            [sys.executable, str(ROOT / "client.py"), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=ROOT,
            timeout=60,
        )
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        environ(env),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        contextlib.chdir(ROOT),
    ):
        try:
            code = client.main(list(args))
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code if isinstance(exit.code, int) else 1
    return subprocess.CompletedProcess(
        ["client.py", *args], code, stdout.getvalue(), stderr.getvalue()
    )


def assert_bad_input(
    result: subprocess.CompletedProcess[str], expected: str, listener: Listener
) -> None:
    """Exit 2, one line on stderr naming the problem, nothing on stdout, Temporal never reached."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("client.py: "), result.stderr
    assert expected in result.stderr, result.stderr
    assert result.stdout == ""
    assert listener.connections() == 0, "client.py connected to Temporal on bad input"


def test_the_shipped_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.service == "game"
    assert config.environments["prod"].router.kind == "alb"


def edited(old: str, new: str) -> str:
    text = EXAMPLE.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def with_regions(*lines: str) -> str:
    """The example with these keys (regions, waves, in_region) in its prod environment."""
    return edited('region = "us-west-2"', "\n".join(['region = "us-west-2"', *lines]))


MULTI_REGION = with_regions(
    'waves = [["us-west-2"], ["us-east-1", "eu-west-1"]]',
    'in_region = { us-east-1 = { task_family = "game-east" } }',
)
"""The example over three regions in two waves."""

CONFIG_CASES = {
    "unknown key": (
        edited("desired_count = 2", "desired_count = 2\ndesird = 3"),
        "environments.prod.desird: Extra inputs are not permitted",
    ),
    "wrong type": (
        edited("desired_count = 2", 'desired_count = "two"'),
        "environments.prod.desired_count: Input should be a valid integer",
    ),
    "zero count": (
        edited("desired_count = 2", "desired_count = 0"),
        "environments.prod.desired_count: Input should be greater than or equal to 1",
    ),
    "missing field": (
        edited('task_family = "game"\n', ""),
        "environments.prod.task_family: Field required",
    ),
    "bad region": (
        edited('region = "us-west-2"', 'region = "mars-1"'),
        "environments.prod.region: 'mars-1' is not an AWS region",
    ),
    "negative timeout": (
        edited('timeout = "15m"', "timeout = -5"),
        "environments.prod.health: timeout must be greater than zero",
    ),
    "poll longer than timeout": (
        edited('poll_interval = "15s"', 'poll_interval = "20m"'),
        "environments.prod.health: poll_interval must not be longer than timeout",
    ),
    "not a duration": (
        edited('timeout = "2h"', 'timeout = "two hours"'),
        "environments.prod.drain.timeout: 'two hours' is not a duration",
    ),
    "non-http url": (
        edited('url = "{color_url}/connections"', 'url = "ftp://x/connections"'),
        "environments.prod.connections.url: 'ftp://x/connections' must start with http://",
    ),
    "unknown router": (
        edited('kind = "alb"', 'kind = "nginx"'),
        "environments.prod.router: Input tag 'nginx' found using 'kind' does not match",
    ),
    # Named by the file's keys: router.weight_step, not the model's router.alb.weight_step.
    "unknown key under the router": (
        edited('kind = "alb"', 'kind = "alb"\nweight_step = 5'),
        "environments.prod.router.weight_step: Extra inputs are not permitted",
    ),
    "missing key under the router": (
        edited('kind = "alb"', 'kind = "app_mesh"'),
        "environments.prod.router.mesh_name: Field required",
    ),
    "alb without target group": (
        edited(
            'target_group_arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/game-prod-blue/0123456789abcdef"\n',
            "",
        ),
        "environments.prod: blue.target_group_arn is required with the alb router",
    ),
    "unknown approval outcome": (
        edited('on_timeout = "abort"', 'on_timeout = "wait"'),
        "environments.prod.approval.on_timeout: Input should be 'abort' or 'proceed'",
    ),
    "four eyes not a boolean": (
        edited("require_different_approver = false", 'require_different_approver = "yes"'),
        "environments.prod.approval.require_different_approver: Input should be a valid boolean",
    ),
    "zero approval timeout": (
        edited('timeout = "24h"', 'timeout = "0s"'),
        "environments.prod.approval.timeout: timeout must be greater than zero",
    ),
    "negative bake": (
        edited('duration = "10m"', "duration = -60"),
        "environments.prod.bake: duration must not be negative",
    ),
    "alarms without a bake": (
        edited('duration = "10m"', 'duration = "0s"'),
        "environments.prod.bake: alarms need a bake duration greater than zero",
    ),
    "duplicate alarm": (
        edited('"game-prod-latency-p99"]', '"game-prod-target-5xx"]'),
        "environments.prod.bake: alarms lists game-prod-target-5xx more than once",
    ),
    "empty alarm name": (
        edited('"game-prod-latency-p99"]', '""]'),
        "environments.prod.bake.alarms.1: String should have at least 1 character",
    ),
    "not toml": ("service = \n[[", "not valid TOML"),
    "bad ssm prefix": (
        edited('ssm_prefix = "/game/prod"', 'ssm_prefix = "game/prod/"'),
        "environments.prod.ssm_prefix: String should match pattern",
    ),
    # Several regions: regions (one wave) or waves, and per-region overrides in in_region.
    "both regions and waves": (
        with_regions(
            'regions = ["us-west-2", "us-east-1"]', 'waves = [["us-west-2"], ["us-east-1"]]'
        ),
        "environments.prod: give regions or waves, not both",
    ),
    "empty wave": (
        with_regions('waves = [["us-west-2"], []]'),
        "environments.prod: waves: a wave needs at least one region",
    ),
    "region in two waves": (
        with_regions('waves = [["us-west-2", "us-east-1"], ["us-east-1"]]'),
        "environments.prod: region us-east-1 is listed more than once",
    ),
    "bad region name in regions": (
        with_regions('regions = ["us-west-2", "mars-1"]'),
        "environments.prod.regions.1: 'mars-1' is not an AWS region name such as us-west-2",
    ),
    "in_region for an unlisted region": (
        with_regions(
            'regions = ["us-west-2", "us-east-1"]',
            'in_region = { eu-west-1 = { task_family = "game-eu" } }',
        ),
        "environments.prod: in_region.eu-west-1: not one of this environment's regions"
        " (us-west-2, us-east-1)",
    ),
    "in_region changing region": (
        with_regions(
            'regions = ["us-west-2", "us-east-1"]',
            'in_region = { us-east-1 = { region = "eu-west-1" } }',
        ),
        "environments.prod: in_region.us-east-1: region cannot differ per region",
    ),
    "unknown key in an in_region override": (
        with_regions(
            'regions = ["us-west-2", "us-east-1"]',
            'in_region = { us-east-1 = { blue = { clustr = "game-prod-blue" } } }',
        ),
        "environments.prod: in_region.us-east-1.blue.clustr: Extra inputs are not permitted",
    ),
    "bad value in an in_region override": (
        with_regions(
            'regions = ["us-west-2", "us-east-1"]',
            'in_region = { us-east-1 = { health = { timeout = "0s" } } }',
        ),
        "environments.prod: in_region.us-east-1.health: timeout must be greater than zero",
    ),
    "missing service": (edited('service = "game"\n', ""), "service: Field required"),
    "an empty file": ("", "service: Field required"),
    "no environments": ('service = "game"\n[environments]\n', "environments: Dictionary should"),
    "wrong type: a string for a list": (
        with_regions('regions = "us-east-1"'),
        "environments.prod.regions: Input should be a valid list",
    ),
    "wrong type: a string for a table": (
        edited('[environments.prod.health]\ntimeout = "15m"\npoll_interval = "15s"', "").replace(
            "desired_count = 2", 'desired_count = 2\nhealth = "fast"'
        ),
        "environments.prod.health: Input should be a valid dictionary",
    ),
    "wrong type: a boolean for a duration": (
        edited('timeout = "2h"', "timeout = true"),
        "environments.prod.drain.timeout: expected a duration such as 30s, 15m or 2h",
    ),
    "zero drain poll interval": (
        edited('poll_interval = "30s"', 'poll_interval = "0s"'),
        "environments.prod.drain: poll_interval must be greater than zero",
    ),
    "zero bake poll interval": (
        edited('poll_interval = "15s"\nalarms', 'poll_interval = "0s"\nalarms'),
        "environments.prod.bake: poll_interval must be greater than zero",
    ),
    "zero integration check timeout": (
        edited('timeout = "5s"', 'timeout = "0s"'),
        "environments.prod.integration_checks.1.timeout: timeout must be greater than zero",
    ),
    "negative integration check timeout": (
        edited('timeout = "5s"', "timeout = -5"),
        "environments.prod.integration_checks.1.timeout: timeout must be greater than zero",
    ),
    "drain poll longer than timeout": (
        edited('poll_interval = "30s"', 'poll_interval = "3h"'),
        "environments.prod.drain: poll_interval must not be longer than timeout",
    ),
    "color url without a scheme": (
        edited(
            'url = "https://blue.game-prod.internal.example.com"',
            'url = "blue.game-prod.internal:8080"',
        ),
        "environments.prod.blue.url: 'blue.game-prod.internal:8080' must be an http:// or https://",
    ),
    "file url in an integration check": (
        edited('url = "{color_url}/health"', 'url = "file:///etc/passwd"'),
        "environments.prod.integration_checks.0.url: 'file:///etc/passwd' must start with http://",
    ),
    "websocket notify url": (
        edited('notify_url = "{color_url}/reconnect"', 'notify_url = "ws://x/reconnect"'),
        "environments.prod.connections.notify_url: 'ws://x/reconnect' must start with http://",
    ),
    # The only place a user names a color is the file: its two color tables.
    "a color other than blue and green": (
        edited(
            "[environments.prod.green]",
            '[environments.prod.purple]\ncluster = "game-prod-purple"\nservice = "game"\n\n[environments.prod.green]',
        ),
        "environments.prod.purple: Extra inputs are not permitted",
    ),
    "a well-formed region AWS does not have": (
        edited('region = "us-west-2"', 'region = "us-mars-1"'),
        "'us-mars-1' is not an AWS region",
    ),
    "a region twice in regions": (
        with_regions('regions = ["us-west-2", "us-east-1", "us-east-1"]'),
        "environments.prod: region us-east-1 is listed more than once",
    ),
    "json instead of toml": ('{"service": "game"}', "not valid TOML"),
    # Notifications: the URL is a secret, never in the file (nor echoed back from it).
    "unknown notify kind": (
        edited('kind = "slack"', 'kind = "teams"'),
        "environments.prod.notify.0.kind: Input should be 'slack' or 'webhook'",
    ),
    "a URL in url_env": (
        edited(
            'url_env = "SLACK_DEPLOY_WEBHOOK"',
            'url_env = "https://hooks.slack.com/services/T0/B0/s3cr3t"',
        ),
        "environments.prod.notify.0.url_env: must be the name of an environment variable",
    ),
    "a URL in the notify table": (
        edited(
            'url_env = "SLACK_DEPLOY_WEBHOOK"',
            'url = "https://hooks.slack.com/services/T0/B0/s3cr3t"',
        ),
        "environments.prod.notify.0: url: a webhook URL is a secret and must not be in deploy.toml",
    ),
    "no url_env": (
        edited('url_env = "SLACK_DEPLOY_WEBHOOK"\n', ""),
        "environments.prod.notify.0.url_env: Field required",
    ),
    "unknown notify event": (
        edited('events = ["succeeded",', 'events = ["deployed",'),
        "environments.prod.notify.1.events.0: Input should be 'awaiting_approval', 'switched',",
    ),
    "a notify event twice": (
        edited('events = ["succeeded",', 'events = ["failed",'),
        "environments.prod.notify.1.events: lists failed more than once",
    ),
    "no notify events": (
        edited('events = ["succeeded", "failed", "rolled_back"]', "events = []"),
        "environments.prod.notify.1.events: list at least one event",
    ),
    "a web_ui_url with a workflow's path": (
        edited(
            'web_ui_url = "https://temporal.internal.example.com"',
            'web_ui_url = "https://temporal.internal.example.com/namespaces/default/workflows"',
        ),
        "environments.prod.notify.0.web_ui_url: give the Web UI's base URL",
    ),
    "the same notify target twice": (
        edited('url_env = "DEPLOY_EVENTS_WEBHOOK"', 'url_env = "SLACK_DEPLOY_WEBHOOK"').replace(
            'kind = "webhook"', 'kind = "slack"'
        ),
        "environments.prod.notify: slack to SLACK_DEPLOY_WEBHOOK is listed more than once",
    ),
    "notify differing per region": (
        with_regions(
            'regions = ["us-west-2", "us-east-1"]',
            "in_region = { us-east-1 = { notify = [] } }",
        ),
        "environments.prod: in_region.us-east-1: notify cannot differ per region",
    ),
    "canary without a percent": (
        edited('strategy = "steps"\nsteps = [10, 50, 100]', 'strategy = "canary"'),
        "environments.prod.traffic: percent is required with strategy canary",
    ),
    "traffic steps that do not rise": (
        edited("steps = [10, 50, 100]", "steps = [50, 10, 100]"),
        "environments.prod.traffic: steps must rise, each higher than the one before",
    ),
    "traffic steps that stop short of 100": (
        edited("steps = [10, 50, 100]", "steps = [10, 50]"),
        "environments.prod.traffic: steps must end at 100",
    ),
    "approval at a step that is not one": (
        edited("approve_at = [50]", "approve_at = [30]"),
        "environments.prod.traffic: approve_at: 30 is not a step before 100 (the steps are 10, 50, 100)",
    ),
    "an unknown traffic strategy": (
        edited('strategy = "steps"', 'strategy = "big-bang"'),
        "environments.prod.traffic: strategy 'big-bang' is not all_at_once, canary, linear, steps",
    ),
    "a preset with a pause": (
        edited(
            'strategy = "steps"\nsteps = [10, 50, 100]', 'strategy = "ECSCanary10Percent5Minutes"'
        ),
        "environments.prod.traffic: strategy ECSCanary10Percent5Minutes is a preset: it takes no",
    ),
    "a step percent above 99": (
        edited('strategy = "steps"\nsteps = [10, 50, 100]', 'strategy = "linear"\npercent = 100'),
        "environments.prod.traffic.percent: Input should be less than or equal to 99",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_config_file_is_one_line_and_exit_2(
    case: str, tmp_path: Path, listener: Listener
) -> None:
    text, expected = CONFIG_CASES[case]
    result = run_client(*GOOD, config_text=text, tmp=tmp_path, address=listener.address)
    assert_bad_input(result, expected, listener)
    # A webhook URL put where it does not belong is refused without being repeated.
    assert "s3cr3t" not in result.stderr


ARGUMENT_CASES = {
    "unknown environment": (
        ["--environment", "qa"],
        "--environment: 'qa' is not in the config file (known: prod)",
    ),
    "version with a space": (["--version", "2 beta"], "--version: '2 beta' is not a version"),
    "version with shell characters": (
        ["--version", "2;rm -rf /"],
        "--version: '2;rm -rf /' is not a version",
    ),
    "version with a command substitution": (["--version", "`id`"], "--version: '`id`' is not a"),
    "empty version": (["--version", ""], "--version: '' is not a version"),
    "empty image": (["--image", ""], "--image: '' is not a container image reference"),
    "image with a space": (["--image", "game: 2"], "--image: 'game: 2' is not a container image"),
    "image with shell characters": (
        ["--image", "game:$(id)"],
        "--image: 'game:$(id)' is not a container image",
    ),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
@pytest.mark.parametrize("config", ["one region", "three regions"])
def test_a_bad_argument_is_one_line_and_exit_2(
    case: str, config: str, tmp_path: Path, listener: Listener
) -> None:
    override, expected = ARGUMENT_CASES[case]
    args = dict(zip(GOOD[::2], GOOD[1::2], strict=True)) | dict(
        zip(override[::2], override[1::2], strict=True)
    )
    flat = [part for pair in args.items() for part in pair]
    text = MULTI_REGION if config == "three regions" else EXAMPLE.read_text()
    result = run_client(*flat, config_text=text, tmp=tmp_path, address=listener.address)
    assert_bad_input(result, expected, listener)


# --region on a one-region environment (the example) and on one of three regions.
REGION_CASES = {
    "another region than the environment's": (
        "one",
        ["--region", "us-east-1"],
        "--region: 'us-east-1' is not a region of this environment (us-west-2)",
    ),
    "its own region twice": (
        "one",
        ["--region", "us-west-2", "--region", "us-west-2"],
        "--region: us-west-2 is given more than once",
    ),
    "not a region name": (
        "one",
        ["--region", "mars-1"],
        "argument --region: 'mars-1' is not an AWS region name such as us-west-2",
    ),
    "an unknown region": (
        "three",
        ["--region", "eu-west-1", "--region", "ap-south-1"],
        "--region: 'ap-south-1' is not a region of this environment"
        " (us-west-2, us-east-1, eu-west-1)",
    ),
    "a region twice": (
        "three",
        ["--region", "eu-west-1", "--region", "us-east-1", "--region", "eu-west-1"],
        "--region: eu-west-1 is given more than once",
    ),
    "an empty region": ("three", ["--region", ""], "argument --region: '' is not an AWS region"),
}


@pytest.mark.parametrize("case", list(REGION_CASES))
def test_a_bad_region_is_one_line_and_exit_2(case: str, tmp_path: Path, listener: Listener) -> None:
    config, args, expected = REGION_CASES[case]
    text = MULTI_REGION if config == "three" else EXAMPLE.read_text()
    result = run_client(*GOOD, *args, config_text=text, tmp=tmp_path, address=listener.address)
    assert_bad_input(result, f"client.py: {expected}", listener)


@pytest.mark.parametrize("case", ["json instead of toml", "zero count"])
def test_a_bad_config_file_is_one_line_and_exit_2_from_a_process(
    case: str, tmp_path: Path, listener: Listener
) -> None:
    text, expected = CONFIG_CASES[case]
    result = run_client(
        *GOOD, config_text=text, tmp=tmp_path, address=listener.address, as_process=True
    )
    assert_bad_input(result, expected, listener)


def test_unreachable_temporal_is_exit_3(tmp_path: Path) -> None:
    result = run_client(*GOOD, config_text=EXAMPLE.read_text(), tmp=tmp_path, as_process=True)
    assert result.returncode == 3
    assert result.stderr.startswith("client.py: cannot reach Temporal at 127.0.0.1:")
    assert result.stderr.count("\n") == 1


def test_empty_temporal_variables_count_as_unset(tmp_path: Path) -> None:
    # An unset CI secret arrives empty: it must not mean namespace "" or an API key (and TLS).
    empty = {"TEMPORAL_NAMESPACE": "", "TEMPORAL_API_KEY": "", "TEMPORAL_TLS": ""}
    result = run_client(
        *GOOD, config_text=EXAMPLE.read_text(), tmp=tmp_path, extra_env=empty, as_process=True
    )
    assert result.returncode == 3
    assert "(namespace default)" in result.stderr
    assert result.stderr.count("\n") == 1


class Command(NamedTuple):
    """A whole command line; ``{name}`` stands for one of the files FILES writes."""

    args: list[str]
    expected: str
    env: tuple[tuple[str, str], ...] = ()


FILES: dict[str, bytes | None] = {
    "config": EXAMPLE.read_bytes(),
    "regions": MULTI_REGION.encode(),
    "empty": b"",
    "json": b'{"service": "game", "environments": {}}\n',
    "latin1": 'service = "café"\n'.encode("latin-1"),
    "missing": None,
}
"""The files a command may name: None is never written."""

COMMAND_CASES = {
    "no command": Command([], "the following arguments are required: command"),
    "an unknown command": Command(["destroy"], "argument command: invalid choice: 'destroy'"),
    "deploy without --version and --image": Command(
        ["deploy", "--config", "{config}", "--environment", "prod"],
        "the following arguments are required: --version, --image",
    ),
    "deploy with a missing config": Command(
        ["deploy", "--config", "{missing}", *GOOD], "--config: {missing} does not exist"
    ),
    "deploy with a directory for a config": Command(
        ["deploy", "--config", "{dir}", *GOOD], "--config: cannot read {dir}: [Errno 21] Is a dir"
    ),
    "deploy with a config that is not UTF-8": Command(
        ["deploy", "--config", "{latin1}", *GOOD],
        "--config: cannot read {latin1}: 'utf-8' codec can't decode byte 0xe9",
    ),
    "deploy with a JSON config": Command(
        ["deploy", "--config", "{json}", *GOOD], "{json}: not valid TOML: Invalid statement"
    ),
    "deploy with an empty config": Command(
        ["deploy", "--config", "{empty}", *GOOD], "{empty}: service: Field required"
    ),
    "deploy with an unknown Temporal profile": Command(
        ["--profile", "nope", "deploy", "--config", "{config}", *GOOD],
        "Temporal connection settings: Profile 'nope' not found",
    ),
    "deploy with an unknown trace exporter": Command(
        ["deploy", "--config", "{config}", *GOOD],
        "OTEL_TRACES_EXPORTER=jaeger: unknown exporter 'jaeger' (use otlp, console, none)",
        env=(("OTEL_TRACES_EXPORTER", "jaeger"),),
    ),
    "deploy --wait with a BLUEGREEN_NO_WORKER_TIMEOUT that is not a number": Command(
        ["deploy", "--config", "{config}", *GOOD, "--wait"],
        "BLUEGREEN_NO_WORKER_TIMEOUT='soon': must be a number of seconds above 0",
        env=(("BLUEGREEN_NO_WORKER_TIMEOUT", "soon"),),
    ),
    "approve with a BLUEGREEN_NO_WORKER_TIMEOUT of zero": Command(
        ["approve", "deploy-game-prod"],
        "BLUEGREEN_NO_WORKER_TIMEOUT='0': must be a number of seconds above 0",
        env=(("BLUEGREEN_NO_WORKER_TIMEOUT", "0"),),
    ),
    "rollback with a BLUEGREEN_NO_WORKER_TIMEOUT of infinity": Command(
        ["rollback", "deploy-game-prod", "--reason", "bug"],
        "BLUEGREEN_NO_WORKER_TIMEOUT='inf': must be a number of seconds above 0",
        env=(("BLUEGREEN_NO_WORKER_TIMEOUT", "inf"),),
    ),
    "rollback without --reason": Command(
        ["rollback", "deploy-game-prod"], "the following arguments are required: --reason"
    ),
    "rollback with an empty reason": Command(
        ["rollback", "deploy-game-prod", "--reason", "  "], "argument --reason: must not be empty"
    ),
    "rollback with a reason too long": Command(
        ["rollback", "deploy-game-prod", "--reason", "x" * 2001],
        "--reason: String should have at most 2000 characters",
    ),
    "rollback without an id": Command(
        ["rollback", "--reason", "bad"], "the following arguments are required: deployment_id"
    ),
    "approve without an id": Command(
        ["approve"], "the following arguments are required: deployment_id"
    ),
    "approve with an empty id": Command(
        ["approve", ""], "argument deployment_id: must not be empty"
    ),
    "approve by nobody": Command(
        ["approve", "deploy-game-prod", "--by", ""], "argument --by: must not be empty"
    ),
    "approve with a comment too long": Command(
        ["approve", "deploy-game-prod", "--comment", "x" * 2001],
        "--comment: String should have at most 2000 characters",
    ),
    "status with an empty id": Command(["status", ""], "argument deployment_id: must not be empty"),
    "list with a limit that is not a number": Command(
        ["list", "--limit", "ten"], "argument --limit: invalid int value: 'ten'"
    ),
    "list with a limit of zero": Command(["list", "--limit", "0"], "argument --limit:"),
    "switch with an unknown environment": Command(
        ["switch", "--config", "{config}", "--environment", "qa"],
        "--environment: 'qa' is not in the config file (known: prod)",
    ),
    "switch with a missing config": Command(
        ["switch", "--config", "{missing}", "--environment", "prod"],
        "--config: {missing} does not exist",
    ),
    "switch without --environment": Command(
        ["switch", "--config", "{config}"], "the following arguments are required: --environment"
    ),
    # switch always goes to the color that is not active: there is no color to name.
    "switch naming a color": Command(
        ["switch", "--config", "{config}", "--environment", "prod", "--to", "purple"],
        "unrecognized arguments: --to purple",
    ),
    "switch with another region than the environment's": Command(
        ["switch", "--config", "{config}", "--environment", "prod", "--region", "eu-west-1"],
        "--region: 'eu-west-1' is not a region of this environment (us-west-2)",
    ),
    "switch of several regions without --region": Command(
        ["switch", "--config", "{regions}", "--environment", "prod"],
        "--region: prod has several regions (us-west-2, us-east-1, eu-west-1); name the one to"
        " switch",
    ),
    "switch of an unknown region": Command(
        ["switch", "--config", "{regions}", "--environment", "prod", "--region", "ap-south-1"],
        "--region: 'ap-south-1' is not a region of this environment"
        " (us-west-2, us-east-1, eu-west-1)",
    ),
}


def write_files(tmp: Path) -> dict[str, str]:
    """FILES under ``tmp``, and ``dir``: a directory; each name's path as a command names it."""
    paths = {"dir": str(tmp)}
    for name, content in FILES.items():
        path = tmp / f"{name}.toml"
        if content is not None:
            path.write_bytes(content)
        paths[name] = str(path)
    return paths


@pytest.mark.parametrize("case", list(COMMAND_CASES))
def test_a_bad_command_line_is_one_line_and_exit_2(
    case: str, tmp_path: Path, listener: Listener
) -> None:
    command = COMMAND_CASES[case]
    paths = write_files(tmp_path)
    result = run_client(
        *(arg.format(**paths) for arg in command.args),
        extra_env=dict(command.env),
        address=listener.address,
    )
    assert_bad_input(result, f"client.py: {command.expected.format(**paths)}", listener)


def test_a_bad_config_file_stops_switch_too(tmp_path: Path, listener: Listener) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(edited("desired_count = 2", "desired_count = 0"))
    result = run_client(
        "switch", "--config", str(path), "--environment", "prod", address=listener.address
    )
    expected = "environments.prod.desired_count: Input should be greater than or equal to 1"
    assert_bad_input(result, expected, listener)


GOOD_INPUT = {
    "approve": ["approve", "deploy-game-prod"],
    "rollback": ["rollback", "deploy-game-prod", "--reason", "bad"],
    "switch": ["switch", "--config", "{config}", "--environment", "prod"],
    "deploy --require-approval": ["deploy", "--config", "{config}", *GOOD, "--require-approval"],
    # With one region, switching together and failing fast change nothing: accepted.
    "deploy one region --region --switch-together --no-fail-fast": [
        "deploy", "--config", "{config}", *GOOD,
        "--region", "us-west-2", "--switch-together", "--no-fail-fast",
    ],
    "deploy three regions": ["deploy", "--config", "{regions}", *GOOD, "--switch-together"],
    "deploy two of three regions": [
        "deploy", "--config", "{regions}", *GOOD, "--region", "eu-west-1", "--region", "us-west-2",
    ],
    "switch one of three regions": [
        "switch", "--config", "{regions}", "--environment", "prod", "--region", "us-east-1",
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", list(GOOD_INPUT))
def test_good_input_goes_on_to_connect_and_unreachable_temporal_is_exit_3(
    case: str, tmp_path: Path, listener: Listener
) -> None:
    # The other side of assert_bad_input: the same listener does see a client that goes on.
    paths = write_files(tmp_path)
    result = run_client(
        *(arg.format(**paths) for arg in GOOD_INPUT[case]), address=listener.address
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"client.py: cannot reach Temporal at {listener.address}")
    assert result.stderr.count("\n") == 1
    assert listener.connections() >= 1


# --- an unknown color in SSM ---------------------------------------------------------------------


def aws_state(resources: DemoResources) -> dict[str, Any]:
    """Everything a deployment could change: SSM, the router, both services, the revisions."""
    ssm = boto3.client("ssm", region_name=resources.region)
    ecs = boto3.client("ecs", region_name=resources.region)
    elbv2 = boto3.client("elbv2", region_name=resources.region)
    parameters = ssm.get_parameters_by_path(Path=resources.ssm_prefix, Recursive=True)
    services = {
        color: ecs.describe_services(
            cluster=resources.clusters[color], services=[resources.service]
        )["services"][0]
        for color in COLORS
    }
    [listener] = elbv2.describe_listeners(ListenerArns=[resources.listener_arn])["Listeners"]
    return {
        "ssm": sorted((p["Name"], p["Value"], p["Version"]) for p in parameters["Parameters"]),
        "router": listener["DefaultActions"],
        "services": {c: (s["desiredCount"], s["taskDefinition"]) for c, s in services.items()},
        "revisions": ecs.list_task_definitions(familyPrefix=resources.task_family)[
            "taskDefinitionArns"
        ],
    }


async def test_an_unknown_color_in_ssm_fails_at_setup_naming_it_and_changes_nothing(
    temporal: str, aws: dict[str, str], tmp_path: Path
) -> None:
    resources = demo_resources("us-west-2")
    parameter = f"{resources.ssm_prefix}/current_active_color"
    boto3.client("ssm", region_name=resources.region).put_parameter(
        Name=parameter, Value="purple", Type="String", Overwrite=True
    )
    before = aws_state(resources)
    config = dev_server.write_config(
        tmp_path / "deploy.toml", {resources.environment: environment_fields(resources)}
    )
    client = await Client.connect(temporal, data_converter=pydantic_data_converter)
    async with real_worker(client) as queue:
        done = await dev_server.client_py(
            temporal,
            queue,
            *["deploy", "--config", str(config), "--environment", resources.environment],
            *["--version", "2", "--image", "game:2", "--wait"],
        )

    assert done.returncode == 1, done
    reason = (
        "read the active color and versions from SSM:"
        f" ssm: {parameter} is 'purple', expected 'blue' or 'green'"
    )
    assert f"  failed in setting_up: {reason}\n" in done.stdout
    assert [line for line in done.stdout.splitlines() if "purple" in line] == [
        f"  failed in setting_up: {reason}"
    ]
    assert "restored:" not in done.stdout
    assert aws_state(resources) == before
