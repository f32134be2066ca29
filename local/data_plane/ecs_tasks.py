"""The local stand-in for ECS's data plane: sample game-server processes, as moto's ECS says.

moto keeps each ECS service's desired count and task definition but runs nothing. For one color
of one region, ``ColorTasks.sync`` makes the running game servers match the service: as many as
its desired count, of the version its task definition's image names (``game:2`` plays ``2``).
As ECS does behind an ALB:

- a new task is registered in its color's target group only once it answers its health check
  (moto reports every registered target healthy, so registration *is* the health the
  deployment's health gate waits for);
- a task to stop is deregistered first and stopped after the target group's deregistration
  delay, once the load balancer sends it nothing new; stopping it stops its process, which
  closes whatever sessions are still on it — what a drain exists to prevent;
- a task whose process dies is deregistered and replaced;
- a new version replaces the old one task by task, old tasks stopped only once enough new ones
  are registered.

Only boto3 against moto tells it what to run: the workflows and activities never know it exists.
"""

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from local.processes import ROOT, free_port
from models.colors import Color

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

TASK_ADDRESSES = (f"127.1.{high}.{low}" for high in range(256) for low in range(1, 255))
"""Each task's own loopback address, as each awsvpc task has its own IP: a target group's
targets are told apart by IP alone (moto keeps one target per ID, whatever its port)."""
STOP_TIMEOUT = 5.0
"""Seconds a task has to exit after SIGTERM before it is killed."""
HEALTH_TIMEOUT = 0.5
"""Seconds one health check may take: the reconcile loop waits for it."""


@dataclass
class Task:
    """One running game-server process."""

    name: str
    version: str
    address: str
    port: int
    process: subprocess.Popen[bytes]
    registered: bool = False
    """In its target group: it answered its health check and takes traffic."""
    served: bool = False
    """Answered its health check once: it may have sessions until it stops."""
    stop_at: float | None = None
    """Deregistered (or never registered): SIGTERM at this time."""
    killed_at: float | None = None
    """SIGTERM sent at this time; SIGKILL after STOP_TIMEOUT."""

    @property
    def retiring(self) -> bool:
        return self.stop_at is not None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


@dataclass(frozen=True)
class ServiceSpec:
    """What moto's ECS says one color should run."""

    desired_count: int
    version: str | None
    """None when the task definition names no image tag this stand-in can run."""


@dataclass
class ColorTasks:
    """The tasks of one color's ECS service in one region.

    ``log_dir`` receives a log per color (``tasks-<region>-<color>.log``): every task's output.
    ``say`` receives one line per change (started, registered, deregistered, stopped, died).
    """

    region: str
    color: Color
    cluster: str
    service: str
    target_group_arn: str | None
    container_name: str
    log_dir: Path
    say: Callable[[str], object] = print
    tasks: list[Task] = field(default_factory=list)
    _names: "count[int]" = field(default_factory=lambda: count(1))

    @property
    def serving_urls(self) -> list[str]:
        """The tasks that passed their health check and still run (registered or draining):
        where the color's sessions are."""
        return [t.url for t in list(self.tasks) if t.served and t.killed_at is None]

    def sync(self) -> None:
        """One reconcile: read the service from moto, then start, register, retire, stop."""
        spec = read_service(self.region, self.cluster, self.service, self.container_name)
        now = time.monotonic()
        for task in list(self.tasks):
            self._advance(task, now)
        live = [t for t in self.tasks if not t.retiring]
        current = [t for t in live if t.version == spec.version]
        for _ in range(spec.desired_count - len(current)):
            if spec.version is not None:
                self._start(spec.version)
        # Surplus tasks of the current version go first, those not yet registered before others.
        surplus = len(current) - spec.desired_count
        for task in sorted(current, key=lambda t: t.registered)[: max(surplus, 0)]:
            self._retire(task, now, "scaled in")
        # Old versions go once the new one is registered at full count, or at once when the
        # service wants nothing (scaled to zero).
        ready = sum(1 for t in current if t.registered)
        if ready >= spec.desired_count:
            for task in live:
                if task.version != spec.version:
                    self._retire(task, now, f"replaced by version {spec.version}")

    def forget_targets(self) -> None:
        """Deregister every target in the color's target group: at start, this stand-in runs no
        task yet, so any target there is left from an earlier run and points nowhere."""
        if self.target_group_arn is None:
            return
        elbv2 = _elbv2(self.region)
        described = elbv2.describe_target_health(TargetGroupArn=self.target_group_arn)
        targets: Any = [
            {"Id": d["Target"]["Id"], "Port": d["Target"]["Port"]}
            for d in described["TargetHealthDescriptions"]
        ]
        if targets:
            elbv2.deregister_targets(TargetGroupArn=self.target_group_arn, Targets=targets)
            self._say(f"deregistered {len(targets)} target(s) left from an earlier run")

    def stop_all(self) -> None:
        """Stop every task's process (the environment is going away): SIGTERM, then SIGKILL."""
        for task in self.tasks:
            if task.process.poll() is None:
                task.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for task in self.tasks:
            try:
                task.process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                task.process.kill()
                task.process.wait()
        self.tasks.clear()

    def _advance(self, task: Task, now: float) -> None:
        """Move one task along: health → registered; retiring → stopped; died → replaced."""
        exited = task.process.poll() is not None
        if exited and task.killed_at is None:
            self._say(f"task {task.name} died (exit {task.process.returncode})")
            self._deregister(task)
            self.tasks.remove(task)
        elif exited:
            self._say(f"task {task.name} stopped")
            self.tasks.remove(task)
        elif task.killed_at is not None:
            if now - task.killed_at > STOP_TIMEOUT:
                task.process.kill()
        elif task.stop_at is not None:
            if now >= task.stop_at:
                task.process.terminate()
                task.killed_at = now
        elif not task.registered and answers_health(task.url):
            task.served = True
            self._register(task)

    def _start(self, version: str) -> None:
        name = f"{self.color}-{next(self._names)}"
        with _CLIENTS:
            address = next(TASK_ADDRESSES)
        port = free_port(address)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "sample_service", "--host", address, "--port", str(port)]
        command += ["--color", self.color, "--version", version]
        with open(self.log_dir / f"tasks-{self.region}-{self.color}.log", "ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.tasks.append(Task(name, version, address, port, process))
        self._say(f"task {name} starting: version {version} on {address}:{port}")

    def _retire(self, task: Task, now: float, why: str) -> None:
        delay = 0.0
        if task.registered:
            self._deregister(task)
            delay = deregistration_delay(self.region, self.target_group_arn)
        task.stop_at = now + delay
        self._say(f"task {task.name} retiring ({why}): stops in {delay:g}s")

    def _register(self, task: Task) -> None:
        if self.target_group_arn is not None:
            _elbv2(self.region).register_targets(
                TargetGroupArn=self.target_group_arn,
                Targets=[{"Id": task.address, "Port": task.port}],
            )
        task.registered = True
        self._say(f"task {task.name} healthy: registered as {task.address}:{task.port}")

    def _deregister(self, task: Task) -> None:
        if not task.registered:
            return
        if self.target_group_arn is not None:
            _elbv2(self.region).deregister_targets(
                TargetGroupArn=self.target_group_arn,
                Targets=[{"Id": task.address, "Port": task.port}],
            )
        task.registered = False
        self._say(f"task {task.name} deregistered")

    def _say(self, line: str) -> None:
        self.say(f"{self.region} {self.color}: {line}")


def read_service(region: str, cluster: str, service: str, container: str) -> ServiceSpec:
    """The service's desired count and the version its task definition's image plays (the
    image of the container named ``container``)."""
    ecs = _ecs(region)
    services = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not services or services[0].get("status") != "ACTIVE":
        return ServiceSpec(desired_count=0, version=None)
    found = services[0]
    return ServiceSpec(
        desired_count=found.get("desiredCount", 0),
        version=task_definition_version(region, found.get("taskDefinition", ""), container),
    )


@lru_cache(maxsize=256)
def task_definition_version(region: str, arn: str, container: str) -> str | None:
    """The tag of the container's image: ``game:2`` → ``2``; None without a tag or without
    that container. A revision's image never changes, so the answer is kept."""
    if not arn:
        return None
    definition = _ecs(region).describe_task_definition(taskDefinition=arn)["taskDefinition"]
    containers = definition.get("containerDefinitions", [])
    image = next((c.get("image", "") for c in containers if c.get("name") == container), "")
    name, _, tag = image.rpartition(":")
    return tag if name and tag and "/" not in tag else None


def deregistration_delay(region: str, target_group_arn: str | None) -> float:
    """The target group's ``deregistration_delay.timeout_seconds`` (AWS's default, 300 s, when
    it is not set): how long ECS waits after deregistering a task before stopping it."""
    if target_group_arn is None:
        return 0.0
    attributes = _elbv2(region).describe_target_group_attributes(TargetGroupArn=target_group_arn)
    for attribute in attributes["Attributes"]:
        if attribute.get("Key") == "deregistration_delay.timeout_seconds":
            return float(attribute.get("Value", "300"))
    return 300.0


def answers_health(url: str) -> bool:
    """Whether the task at ``url`` answers ``GET /health`` with 200 right now."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=HEALTH_TIMEOUT) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


_CLIENTS = threading.Lock()
"""boto3's default session is not safe to make clients from in several threads at once (a
thread per region does; the clients themselves are safe); TASK_ADDRESSES is shared too."""


@lru_cache(maxsize=16)
def _ecs(region: str) -> "ECSClient":
    with _CLIENTS:
        return boto3.client("ecs", region_name=region)


@lru_cache(maxsize=16)
def _elbv2(region: str) -> "ElasticLoadBalancingv2Client":
    with _CLIENTS:
        return boto3.client("elbv2", region_name=region)
