"""What the crash and restart tests share: real processes, the AWS state reduced to what a
deployment decides, and the changes it made, counted from the calls a proxy recorded.

A deployment here runs as in production: ``worker.py`` as a subprocess on the Temporal dev
server, its boto3 calls to moto. Between the worker and moto sits a
:class:`~tests.reliability.fault_proxy.FaultProxy` in the test's own process. It passes every
call on and writes down each one that reached moto, so the test knows how many times each change
was made, also by a worker that was killed before it could log it. A ``hold`` rule keeps back
the answer to one chosen call after moto has made the change: the activity is then caught in the
middle, with its change done and not yet reported, which is where a worker crash hurts (the
retry must not do it a second time).

    with FaultProxy(moto_url) as proxy:
        proxy.add(Rule("ecs.RegisterTaskDefinition", "hold"))
        with worker_process("crash-deploy-1", worker_env(address, queue, proxy.url)) as worker:
            ...  # start the deployment; await until(proxy.held.is_set, ...)
            kill(worker)
        proxy.release()
"""

import asyncio
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from local.aws_resources import (
    DemoResources,
    create_demo_resources,
    placeholder_targets,
    write_demo_config,
)
from local.processes import MOTO_ENV, background, log_path, temporal_dev_server
from local.stack import REGION
from local.state import read_state
from models.colors import COLORS
from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest, DeploymentStatus
from tests.players import StayingPlayers
from tests.reliability.fault_proxy import Call
from workflows.deployment import BlueGreenDeployment
from workflows.search_attributes import REGISTRATIONS

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ssm import SSMClient

Handle = WorkflowHandle[BlueGreenDeployment, DeploymentStatus]
Check = Callable[[], bool | Awaitable[bool]]

# --- processes ----------------------------------------------------------------------------------


async def until(check: Check, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``check`` (plain or async) until it holds; TimeoutError naming ``what`` after
    ``timeout`` seconds. The event loop keeps running the other cases meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = check()
        if answer if isinstance(answer, bool) else await answer:
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"not {what} after {timeout:.0f}s")
        await asyncio.sleep(interval)


def worker_env(address: str, task_queue: str, aws_endpoint: str) -> dict[str, str]:
    """What a worker needs: the dev server, its own task queue, and AWS at ``aws_endpoint``."""
    return {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": "default",
        "BLUEGREEN_TASK_QUEUE": task_queue,
        **MOTO_ENV,
        "AWS_ENDPOINT_URL": aws_endpoint,
    }


@contextmanager
def worker_process(name: str, env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``worker.py`` with its own log, ``.local/logs/NAME.log`` (started empty), so that the
    lines of each worker can be told apart; stopped (SIGTERM) on the way out if still alive.

    local.processes.worker names the log after the server's port, one log for all the workers
    of a server, and waits with a Temporal CLI call per poll: too costly for ten at once.
    """
    log_path(name).unlink(missing_ok=True)
    # A developer's TEMPORAL_* settings (TLS, API key, profile) must not reach the dev server.
    with background(name, [sys.executable, "worker.py"], env=env, unset=("TEMPORAL_",)) as process:
        yield process


async def polling(process: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    """Until the worker says it polls its task queue; RuntimeError as soon as it died."""

    def says_so() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"worker {name} exited with {process.returncode}: see {log_path(name)}"
            )
        path = log_path(name)
        return path.exists() and "worker polling task queue" in path.read_text(errors="replace")

    await until(says_so, timeout, f"worker {name} polling")


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no graceful shutdown, nothing reported to Temporal, as in a crash."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


class DevServer(AbstractContextManager["DevServer"]):
    """A Temporal dev server with its state in ``db_file``, which can be stopped and started
    again on the same port: what a worker sees when its cluster restarts.

    ``local.processes.temporal_dev_server`` already takes a ``db_file``; this only keeps its
    context open between ``start`` and ``stop``.
    """

    def __init__(self, port: int, db_file: Path) -> None:
        self.port = port
        self.db_file = db_file
        self.address = f"127.0.0.1:{port}"
        self._running: ExitStack | None = None

    def start(self) -> str:
        """Start it (the BlueGreen* search attributes registered); its address once it serves."""
        assert self._running is None, "already running"
        with ExitStack() as stack:
            address = stack.enter_context(
                temporal_dev_server(self.port, None, self.db_file, search_attributes=REGISTRATIONS)
            )
            self._running = stack.pop_all()
        return address

    def stop(self) -> None:
        """SIGTERM, and wait until it has exited."""
        if self._running is not None:
            self._running.close()
            self._running = None

    def __enter__(self) -> "DevServer":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- the game servers' players -------------------------------------------------------------------


def join(game_url: str, version: str) -> StayingPlayers:
    """A player connects to the game server at ``game_url`` on client ``version`` and stays,
    told to reconnect or not, until ``leave``."""
    return StayingPlayers(game_url, version)


def leave(player: StayingPlayers) -> None:
    """The player leaves: the drain can end."""
    player.leave()


# --- what changed in AWS ------------------------------------------------------------------------

Change = tuple[str, ...]
"""One change a call asked AWS for, in words free of the case's names and random IDs."""

MUTATING = {
    "ecs.RegisterTaskDefinition",
    "ecs.UpdateService",
    "ssm.PutParameter",
    "ssm.DeleteParameter",
    "elbv2.ModifyListener",
    "elbv2.ModifyRule",
}
"""The actions that change AWS, named as the step of the worker's log lines."""

EXPECTED_CHANGES: list[Change] = [
    ("register task definition", "image 2"),
    ("update service", "green", "desired 2", "revision 2"),
    ("put parameter", "green/version", "2"),
    ("put parameter", "current_active_color", "green"),
    ("weights", "blue 0", "green 100"),
    ("update service", "blue", "desired 0", "revision -"),
]
"""What a deployment of version 2 (image ``<service>:2``) from blue to green asks of AWS, once
each, in this order."""


def deployment_request(
    service: str, env: EnvironmentConfig, require_approval: bool = False
) -> DeploymentRequest:
    """The deployment every test makes: version 2 (image ``<service>:2``) of ``service``."""
    return DeploymentRequest(
        service=service,
        environment="prod",
        version="2",
        image=f"{service}:2",
        target=env,
        require_approval=require_approval,
        requested_by="tests/reliability",
    )


EXPECTED_STATE: dict[str, Any] = {
    "active color": "green",
    "versions": {"blue": "1", "green": "2"},
    "ssm history": {
        "current_active_color": ["blue", "green"],
        "blue/version": ["1"],
        "green/version": ["2"],
    },
    "weights": {"blue": 0, "green": 100},
    "services": {
        "blue": {"desired": 0, "running": 0, "revision": "1", "images": ["1"]},
        "green": {"desired": 2, "running": 2, "revision": "2", "images": ["2"]},
    },
    "task definition revisions": 2,
}
"""The :func:`snapshot` of the demo's environment after that deployment."""


def changes(calls: Sequence[Call], resources: DemoResources) -> list[Change]:
    """The changes the successful mutating ``calls`` asked for, in order, repeats included."""
    prefix = resources.ssm_prefix.rstrip("/") + "/"
    colors_of = {arn: color for color, arn in resources.target_group_arns.items()}
    found: list[Change] = []
    for call in calls:
        p = call.params
        if call.action not in MUTATING or not call.succeeded:
            continue
        if call.action == "ecs.RegisterTaskDefinition":
            images = [c["image"].rpartition(":")[2] for c in p["containerDefinitions"]]
            found.append(("register task definition", *(f"image {i}" for i in images)))
        elif call.action == "ecs.UpdateService":
            revision = str(p.get("taskDefinition") or "-").rpartition(":")[2]
            found.append(
                (
                    "update service",
                    str(p["cluster"]).rpartition("-")[2],
                    f"desired {p.get('desiredCount', '-')}",
                    f"revision {revision}",
                )
            )
        elif call.action == "ssm.PutParameter":
            found.append(("put parameter", str(p["Name"]).removeprefix(prefix), str(p["Value"])))
        elif call.action == "ssm.DeleteParameter":
            found.append(("delete parameter", str(p["Name"]).removeprefix(prefix)))
        else:
            found.append(("weights", *_weights(p, colors_of)))
    return found


def _weights(form: Mapping[str, Any], colors_of: Mapping[str, str]) -> list[str]:
    """``["blue 0", "green 100"]`` from a ModifyListener/ModifyRule form's forward config."""
    weights: dict[str, str] = {}
    for key, value in form.items():
        if ".ForwardConfig.TargetGroups.member." in key and key.endswith(".TargetGroupArn"):
            color = colors_of.get(str(value), str(value))
            weights[color] = str(form.get(key.removesuffix("TargetGroupArn") + "Weight", "1"))
    return [f"{color} {weights[color]}" for color in sorted(weights)]


def calls_made(calls: Sequence[Call]) -> Counter[str]:
    """The changing calls that AWS answered without an error, per log step
    (``ecs.UpdateService``): to compare with :func:`logged_calls`."""
    return Counter(call.action for call in calls if call.action in MUTATING and call.succeeded)


def collapsed(found: Sequence[Change]) -> list[Change]:
    """``found`` with each run of the same change kept once: a retry that repeats a change
    with the same values right after it (what an idempotent activity does) changes nothing."""
    return [change for i, change in enumerate(found) if i == 0 or found[i - 1] != change]


# --- the worker's log lines -----------------------------------------------------------------------

_FIELD = re.compile(r" (deployment|region|step|status|error|attempt)=(\S+)")


@dataclass
class LoggedCalls:
    """The AWS calls the workers logged for one deployment (activities/logs.py's lines)."""

    answered: Counter[str] = field(default_factory=Counter)
    """Calls AWS answered without an error, per step (``ecs.UpdateService``)."""
    retried: Counter[str] = field(default_factory=Counter)
    """Of those, calls made by a second or later attempt of their activity."""


def logged_calls(logs: Sequence[Path], deployment_id: str) -> LoggedCalls:
    """Count the AWS call lines of ``deployment_id`` in ``logs`` (all the workers of a case)."""
    counted = LoggedCalls()
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            fields = dict(_FIELD.findall(line))
            if fields.get("deployment") != deployment_id or "region" not in fields:
                continue
            if "error" in fields:
                continue
            counted.answered[fields["step"]] += 1
            if int(fields.get("attempt", "1")) > 1:
                counted.retried[fields["step"]] += 1
    return counted


# --- the AWS state ----------------------------------------------------------------------------


def demo_environment(
    config_dir: Path, service: str, blue_url: str, green_url: str
) -> tuple[DemoResources, EnvironmentConfig]:
    """The demo's resources under ``service`` in moto (blue active on version 1), and the
    environment of the deploy.toml describing them (written to ``config_dir``)."""
    resources = create_demo_resources(
        REGION, blue_url=blue_url, green_url=green_url, service=service
    )
    # No ECS stand-in runs here: placeholder targets let the health gate pass.
    placeholder_targets(resources)
    config = write_demo_config(config_dir / f"{service}.toml", resources)
    return resources, config.environment("prod")


def snapshot(env: EnvironmentConfig, resources: DemoResources) -> dict[str, Any]:
    """The environment's state free of names and IDs, to compare one run with another: SSM
    (and each parameter's history, repeats collapsed), weights, both colors' counts and task
    definitions, and how many revisions the task family has."""
    state = read_state(env)
    ecs: ECSClient = boto3.client("ecs", region_name=env.region)
    ssm: SSMClient = boto3.client("ssm", region_name=env.region)
    family = f":task-definition/{resources.task_family}:"
    revisions = [
        arn
        for arn in ecs.list_task_definitions(familyPrefix=resources.task_family)[
            "taskDefinitionArns"
        ]
        if family in arn
    ]
    history: dict[str, list[str]] = {}
    for name in ("current_active_color", "blue/version", "green/version"):
        full = f"{resources.ssm_prefix}/{name}"
        try:
            values = [
                str(p.get("Value"))
                for p in ssm.get_parameter_history(Name=full, MaxResults=50)["Parameters"]
            ]
        except ssm.exceptions.ParameterNotFound:
            values = []
        history[name] = [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]
    services: dict[str, dict[str, Any]] = {}
    for color in COLORS:
        seen = state.services[color]
        arn = seen.task_definition_arn or ""
        images = (
            [
                c.get("image", "").rpartition(":")[2]
                for c in ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
                    "containerDefinitions"
                ]
            ]
            if arn
            else []
        )
        services[color] = {
            "desired": seen.desired_count,
            "running": seen.running_count,
            "revision": arn.rpartition(":")[2],
            "images": images,
        }
    return {
        "active color": state.ssm.active_color,
        "versions": dict(state.ssm.versions),
        "ssm history": history,
        "weights": {"blue": state.weights.blue, "green": state.weights.green},
        "services": services,
        "task definition revisions": len(revisions),
    }


# --- the workflow's history -------------------------------------------------------------------


async def retried_activities(client: Client, workflow_id: str) -> list[str]:
    """The activities of ``workflow_id`` (and of the children it started) that needed more
    than one attempt: those a killed worker had been running, and any that failed once."""
    found: list[str] = []
    ids = [workflow_id]
    while ids:
        history = await client.get_workflow_handle(ids.pop()).fetch_history()
        scheduled: dict[int, str] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attributes.activity_type.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                if started.attempt > 1:
                    found.append(scheduled.get(started.scheduled_event_id, "?"))
            elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                child = event.child_workflow_execution_started_event_attributes
                ids.append(child.workflow_execution.workflow_id)
    return found
