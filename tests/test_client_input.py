"""Bad input to client.py: one line naming the problem, exit code 2, nothing started.

Temporal is pointed at a port where nothing listens: had anything been started, the exit code
would be 3 (unreachable), not 2.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.processes import ROOT, free_port
from models.config import load_config

EXAMPLE = ROOT / "deploy.example.toml"
GOOD = ["--environment", "prod", "--version", "2", "--image", "repo/game:2"]


def run_client(
    *args: str,
    config_text: str | None = None,
    tmp: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    if config_text is not None:
        assert tmp is not None
        path = tmp / "deploy.toml"
        path.write_text(config_text)
        args = ("deploy", "--config", str(path), *args)
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "client.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


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
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_config_file_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    text, expected = CONFIG_CASES[case]
    result = run_client(*GOOD, config_text=text, tmp=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


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
    "empty image": (["--image", ""], "--image: '' is not a container image reference"),
    "image with shell characters": (
        ["--image", "game:$(id)"],
        "--image: 'game:$(id)' is not a container image",
    ),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
@pytest.mark.parametrize("config", ["one region", "three regions"])
def test_a_bad_argument_is_one_line_and_exit_2(case: str, config: str, tmp_path: Path) -> None:
    override, expected = ARGUMENT_CASES[case]
    args = dict(zip(GOOD[::2], GOOD[1::2], strict=True)) | dict(
        zip(override[::2], override[1::2], strict=True)
    )
    flat = [part for pair in args.items() for part in pair]
    text = MULTI_REGION if config == "three regions" else EXAMPLE.read_text()
    result = run_client(*flat, config_text=text, tmp=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"client.py: {expected}" or expected in result.stderr
    assert result.stderr.count("\n") == 1


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
def test_a_bad_region_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    config, args, expected = REGION_CASES[case]
    text = MULTI_REGION if config == "three" else EXAMPLE.read_text()
    result = run_client(*GOOD, *args, config_text=text, tmp=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"client.py: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    result = run_client("deploy", "--config", str(tmp_path / "nope.toml"), *GOOD)
    assert result.returncode == 2
    assert result.stderr == f"client.py: --config: {tmp_path / 'nope.toml'} does not exist\n"


def test_a_missing_required_option_is_exit_2() -> None:
    result = run_client("deploy", "--environment", "prod")
    assert result.returncode == 2
    assert "the following arguments are required: --version, --image" in result.stderr
    assert result.stderr.count("\n") == 1


def test_unreachable_temporal_is_exit_3(tmp_path: Path) -> None:
    result = run_client(*GOOD, config_text=EXAMPLE.read_text(), tmp=tmp_path)
    assert result.returncode == 3
    assert result.stderr.startswith("client.py: cannot reach Temporal at 127.0.0.1:")
    assert result.stderr.count("\n") == 1


def test_empty_temporal_variables_count_as_unset(tmp_path: Path) -> None:
    # An unset CI secret arrives empty: it must not mean namespace "" or an API key (and TLS).
    empty = {"TEMPORAL_NAMESPACE": "", "TEMPORAL_API_KEY": "", "TEMPORAL_TLS": ""}
    result = run_client(*GOOD, config_text=EXAMPLE.read_text(), tmp=tmp_path, extra_env=empty)
    assert result.returncode == 3
    assert "(namespace default)" in result.stderr
    assert result.stderr.count("\n") == 1


# {config} stands for a valid copy of the example; {missing} for a file that does not exist.
MESSAGE_CASES = {
    "rollback without --reason": (
        ["rollback", "deploy-game-prod"],
        "the following arguments are required: --reason",
    ),
    "rollback with an empty reason": (
        ["rollback", "deploy-game-prod", "--reason", "  "],
        "argument --reason: must not be empty",
    ),
    "rollback with a reason too long": (
        ["rollback", "deploy-game-prod", "--reason", "x" * 2001],
        "--reason: String should have at most 2000 characters",
    ),
    "rollback without an id": (
        ["rollback", "--reason", "bad"],
        "the following arguments are required: deployment_id",
    ),
    "approve without an id": (["approve"], "the following arguments are required: deployment_id"),
    "approve with an empty id": (["approve", ""], "argument deployment_id: must not be empty"),
    "approve by nobody": (
        ["approve", "deploy-game-prod", "--by", ""],
        "argument --by: must not be empty",
    ),
    "approve with a comment too long": (
        ["approve", "deploy-game-prod", "--comment", "x" * 2001],
        "--comment: String should have at most 2000 characters",
    ),
    "switch with an unknown environment": (
        ["switch", "--config", "{config}", "--environment", "qa"],
        "--environment: 'qa' is not in the config file (known: prod)",
    ),
    "switch with a missing config": (
        ["switch", "--config", "{missing}", "--environment", "prod"],
        "--config: {missing} does not exist",
    ),
    "switch without --environment": (
        ["switch", "--config", "{config}"],
        "the following arguments are required: --environment",
    ),
    "switch with another region than the environment's": (
        ["switch", "--config", "{config}", "--environment", "prod", "--region", "eu-west-1"],
        "--region: 'eu-west-1' is not a region of this environment (us-west-2)",
    ),
    "switch of several regions without --region": (
        ["switch", "--config", "{regions}", "--environment", "prod"],
        "--region: prod has several regions (us-west-2, us-east-1, eu-west-1); name the one to"
        " switch",
    ),
    "switch of an unknown region": (
        ["switch", "--config", "{regions}", "--environment", "prod", "--region", "ap-south-1"],
        "--region: 'ap-south-1' is not a region of this environment"
        " (us-west-2, us-east-1, eu-west-1)",
    ),
}


@pytest.mark.parametrize("case", list(MESSAGE_CASES))
def test_bad_input_to_approve_rollback_switch_is_one_line_and_exit_2(
    case: str, tmp_path: Path
) -> None:
    args, expected = MESSAGE_CASES[case]
    paths = {
        "config": str(tmp_path / "deploy.toml"),
        "regions": str(tmp_path / "regions.toml"),
        "missing": str(tmp_path / "nope.toml"),
    }
    (tmp_path / "deploy.toml").write_text(EXAMPLE.read_text())
    (tmp_path / "regions.toml").write_text(MULTI_REGION)
    result = run_client(*(arg.format(**paths) for arg in args))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"client.py: {expected.format(**paths)}\n"
    assert result.stdout == ""


def test_a_bad_config_file_stops_switch_too(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(edited("desired_count = 2", "desired_count = 0"))
    result = run_client("switch", "--config", str(path), "--environment", "prod")
    assert result.returncode == 2, result.stderr
    assert "environments.prod.desired_count: Input should be greater than or equal to 1" in (
        result.stderr
    )
    assert result.stderr.count("\n") == 1


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
    case: str, tmp_path: Path
) -> None:
    (tmp_path / "deploy.toml").write_text(EXAMPLE.read_text())
    (tmp_path / "regions.toml").write_text(MULTI_REGION)
    paths = {"config": tmp_path / "deploy.toml", "regions": tmp_path / "regions.toml"}
    result = run_client(*(arg.format(**paths) for arg in GOOD_INPUT[case]))
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("client.py: cannot reach Temporal at 127.0.0.1:")
    assert result.stderr.count("\n") == 1
