"""The GitHub Actions examples under examples/github-actions/: valid workflows that run client.py
with subcommands and options that exist.

Each workflow is read as YAML and checked for its triggers and set-up. Then the shell script of
its client.py step runs for real in bash, its ``${{ … }}`` expressions given values as a run
would, with a stand-in ``python`` on the PATH that records its arguments and environment;
client.py's own parser then reads those arguments.
"""

import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.arguments import build_parser
from local.processes import ROOT

EXAMPLES = ROOT / "examples" / "github-actions"
SECRETS = {
    "TEMPORAL_ADDRESS": "my-ns.a1b2c.tmprl.cloud:7233",
    "TEMPORAL_NAMESPACE": "my-ns.a1b2c",
    "TEMPORAL_API_KEY": "secret-key",
}
RECORDER = """#!/bin/sh
# Stands in for python: records its arguments and the Temporal settings it was given.
exec "$REAL_PYTHON" -c '
import json, os, sys
temporal = {k: v for k, v in os.environ.items() if k.startswith("TEMPORAL_")}
json.dump({"argv": sys.argv[1:], "temporal": temporal}, open(os.environ["RECORD"], "w"))
' "$@"
"""


def workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def only_job(flow: dict[Any, Any]) -> dict[str, Any]:
    [job] = flow["jobs"].values()
    return job  # type: ignore[no-any-return]


def client_step(job: dict[str, Any]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in job["steps"] if "client.py" in s.get("run", "")]
    [step] = steps
    return step


def evaluate(expression: str, context: dict[str, dict[str, str]]) -> str:
    """A GitHub expression as these workflows use them: ``a.b``, ``'literal'``, ``x || y``."""
    for term in expression.split("||"):
        term = term.strip()
        if term.startswith("'"):
            value = term.strip("'")
        else:
            scope, _, key = term.partition(".")
            value = context.get(scope, {}).get(key, "")
        if value:
            return value
    return ""


def expand(value: Any, context: dict[str, dict[str, str]]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: evaluate(m.group(1), context), str(value))


def run_step(
    name: str, tmp_path: Path, context: dict[str, dict[str, str]], **github_env: str
) -> dict[str, Any]:
    """Run the client.py step of workflow ``name`` in bash as GitHub would (job env, step env,
    the script); what the stand-in python received."""
    job = only_job(workflow(name))
    step = client_step(job)
    record = tmp_path / "record.json"
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(RECORDER)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {
        "PATH": f"{stub.parent}:/usr/bin:/bin",
        "REAL_PYTHON": sys.executable,
        "RECORD": str(record),
        **github_env,
    }
    for scope in (job.get("env", {}), step.get("env", {})):
        env |= {key: expand(value, context) for key, value in scope.items()}
    # GitHub runs `run:` scripts with `bash -e {0}`.
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    done = subprocess.run(
        ["bash", "-e", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    recorded: dict[str, Any] = json.loads(record.read_text())
    assert recorded["argv"][0] == "client.py"
    return recorded


# --- deploy.yml --------------------------------------------------------------------------------


def test_deploy_runs_on_a_tag_or_by_hand_with_python_3_11() -> None:
    flow = workflow("deploy.yml")
    assert flow["on"]["push"] == {"tags": ["v*"]}
    inputs = flow["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"environment", "version", "image", "require_approval"}
    assert inputs["require_approval"]["type"] == "boolean"
    assert flow["concurrency"]["cancel-in-progress"] is False
    job = only_job(flow)
    assert {step.get("uses") for step in job["steps"]} >= {
        "actions/checkout@v4",
        "actions/setup-python@v5",
    }
    [python] = [s for s in job["steps"] if s.get("uses") == "actions/setup-python@v5"]
    assert python["with"]["python-version"] == "3.13"
    assert any(s.get("run") == "pip install -r requirements.lock" for s in job["steps"])
    assert job["env"] == {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS}
    # A failed deployment fails the job through client.py's exit code: nothing swallows it.
    assert all("continue-on-error" not in step for step in job["steps"])
    assert "|| true" not in client_step(job)["run"]


def test_deploy_on_a_tag_deploys_the_tags_version(tmp_path: Path) -> None:
    context = {
        "inputs": {},
        "secrets": SECRETS | {"TEMPORAL_API_KEY": ""},  # a self-hosted cluster: no API key
        "vars": {"IMAGE_REPOSITORY": "123456789012.dkr.ecr.us-west-2.amazonaws.com/game"},
    }

    recorded = run_step("deploy.yml", tmp_path, context, GITHUB_REF_NAME="v2.1.0")

    assert recorded["argv"][1:] == [
        "deploy", "--config", "deploy.toml", "--environment", "prod", "--version", "2.1.0",
        "--image", "123456789012.dkr.ecr.us-west-2.amazonaws.com/game:2.1.0", "--wait",
    ]  # fmt: skip
    args = build_parser().parse_args(recorded["argv"][1:])
    assert (args.command, args.wait, args.require_approval, args.json) == (
        "deploy",
        True,
        False,
        False,
    )
    # The empty secret is not passed on as an empty API key (which would turn TLS on).
    assert recorded["temporal"] == {
        "TEMPORAL_ADDRESS": SECRETS["TEMPORAL_ADDRESS"],
        "TEMPORAL_NAMESPACE": SECRETS["TEMPORAL_NAMESPACE"],
    }


def test_deploy_by_hand_can_wait_for_approval(tmp_path: Path) -> None:
    context = {
        "inputs": {
            "environment": "staging",
            "version": "3",
            "image": "registry.example.com/game:3",
            "require_approval": "true",
        },
        "secrets": SECRETS,
        "vars": {},
    }

    recorded = run_step("deploy.yml", tmp_path, context, GITHUB_REF_NAME="main")

    args = build_parser().parse_args(recorded["argv"][1:])
    assert (args.environment, args.version, args.image) == (
        "staging",
        "3",
        "registry.example.com/game:3",
    )
    assert args.wait and args.require_approval
    assert recorded["temporal"] == SECRETS


# --- approve.yml and rollback.yml --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text_input"), [("approve.yml", "comment"), ("rollback.yml", "reason")]
)
def test_approve_and_rollback_are_dispatched_by_hand(name: str, text_input: str) -> None:
    flow = workflow(name)
    assert set(flow["on"]) == {"workflow_dispatch"}
    inputs = flow["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"deployment_id", text_input}
    assert inputs["deployment_id"]["required"] is True
    job = only_job(flow)
    assert job["env"] == {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS}
    [python] = [s for s in job["steps"] if s.get("uses") == "actions/setup-python@v5"]
    assert python["with"]["python-version"] == "3.13"


# Shell syntax in the text: it reaches client.py as it was typed, never run.
SNEAKY = 'looks good "$(touch pwned)" `id` $HOME'


def test_approve_sends_who_and_why(tmp_path: Path) -> None:
    context = {
        "inputs": {"deployment_id": "deploy-game-prod", "comment": SNEAKY},
        "secrets": SECRETS,
        "github": {"actor": "octocat"},
    }

    recorded = run_step("approve.yml", tmp_path, context)

    args = build_parser().parse_args(recorded["argv"][1:])
    assert (args.command, args.deployment_id, args.by, args.comment) == (
        "approve",
        "deploy-game-prod",
        "octocat",
        SNEAKY,
    )
    assert not (tmp_path / "pwned").exists()


def test_rollback_sends_who_and_why_and_follows_it(tmp_path: Path) -> None:
    context = {
        "inputs": {"deployment_id": "deploy-game-prod", "reason": SNEAKY},
        "secrets": SECRETS,
        "github": {"actor": "octocat"},
    }

    recorded = run_step("rollback.yml", tmp_path, context)

    args = build_parser().parse_args(recorded["argv"][1:])
    assert (args.command, args.deployment_id, args.by, args.reason, args.json) == (
        "rollback",
        "deploy-game-prod",
        "octocat",
        SNEAKY,
        False,
    )


def test_every_example_is_listed_here() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir()) == [
        "approve.yml",
        "deploy.yml",
        "rollback.yml",
    ]
