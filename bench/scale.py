"""Many deployments of different services at once on one worker: wall time, CPU and memory.

    python -m bench.scale [--deployments 100] [--rounds 1] [--json] [--server-config KEY=VALUE]

Starts the local environment in one region (``local_stack``: Temporal's dev server, moto as AWS,
the two sample game servers, one ``worker.py``) and creates ``--deployments`` (100) more
services in moto, each with the demo's full set of resources (``create_demo_resources``: two
ECS clusters and services, a task family, an ALB with two weighted target groups, a 5xx alarm,
the SSM parameters: blue active on version 1) and its own deploy.toml
(``write_demo_config``, under .local/bench/scale/). All of them point at the same two game
servers, which have no players.

The deployments have nothing to wait for, as in ``bench/multi_region.py``: moto reports the new
color healthy at its first check, the demo's integration check (one HTTP GET), no bake, no
players (the drain ends at its first count). After one warm-up deployment of the demo's own
service (not counted: the worker's first deployment creates its boto3 clients and loads the
workflows' code), each round starts a deployment of every service at once, as ``client.py
deploy`` starts one (``cli.deployment_kinds.start``), and waits for them all: round r deploys
version r + 1 to whichever color is inactive. Measured per round: the wall time from just
before the first start request to the last result; each deployment's own start → result;
the CPU seconds (user + system, from /proc) that the worker, the Temporal dev server and moto
used during the round; the worker's resident memory after the round and its peak since it
started (VmRSS, VmHWM in /proc/PID/status). After each round every deployment must have
succeeded and left its service as ``make demo`` checks (SSM, the router's weights, both colors'
desired and running counts); one that did not fails the run.

``--rounds`` defaults to 1 here: one round already runs 100 deployments. ``--server-config
KEY=VALUE`` (repeatable) sets the dev server's dynamic config. ``--json`` prints one JSON
document on stdout instead of the tables (progress goes to stderr either way).
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.client import Client

from bench import _report
from bench._report import CpuMeter
from bench._stack import bench_stack, deployment_request, measure_on
from cli.deployment_kinds import start
from cli.deployments import final_status
from local.aws_resources import create_demo_resources, write_demo_config
from local.processes import STATE_DIR
from local.stack import LocalStack
from local.state import mismatches, read_state
from models.colors import Color, other_color
from models.config import EnvironmentConfig
from models.deployment import State
from runtime.connection import task_queue

DEFAULT_DEPLOYMENTS = 100
DEFAULT_ROUNDS = 1
TIMEOUT = 600.0
"""Seconds a round may take before the benchmark gives up."""
CONFIG_DIR = STATE_DIR / "bench" / "scale"
BY = "bench/scale.py"
CPU_NAMES = (*CpuMeter.NAMES.values(), "others")
"""The processes measured, and ``others``: everything else on this shared machine."""


@dataclass(frozen=True)
class Service:
    """One of the services deployed at once."""

    name: str
    env: EnvironmentConfig
    desired_count: int


def create_services(stack: LocalStack, count: int, say: Callable[[str], None]) -> list[Service]:
    """``count`` services named svc-000, svc-001, … in moto, next to the demo's; their configs.

    They share the stack's two game servers: the integration check and the connection count
    ask them, and neither has players.
    """
    first = stack.resources
    services = []
    began = time.perf_counter()
    for number in range(count):
        name = f"svc-{number:03d}"
        resources = create_demo_resources(
            first.region,
            blue_url=first.urls["blue"],
            green_url=first.urls["green"],
            service=name,
            environment=stack.environment,
        )
        config = write_demo_config(CONFIG_DIR / f"{name}.toml", resources)
        env = _report.with_bake(config.environment(stack.environment), 0)
        services.append(Service(name, env, resources.desired_count))
        if (number + 1) % 25 == 0 or number + 1 == count:
            say(f"{number + 1} of {count} services created in moto")
    say(f"created {count} services in {time.perf_counter() - began:.1f}s (configs in {CONFIG_DIR})")
    return services


@dataclass
class Round:
    """One round: every service deployed at once; seconds."""

    round: int
    version: str
    wall: float
    """Just before the first start request → the last result."""
    starts: float
    """Just before the first start request → the last start request answered."""
    each: dict[str, float]
    """Median, min and max over the deployments of each one's start request → result."""
    cpu: dict[str, float] = field(default_factory=dict)
    """Process → CPU seconds used during the round (empty without /proc); ``others``: every
    other process on this shared machine."""
    worker_memory_mb: dict[str, float] = field(default_factory=dict)
    """The worker's resident memory after the round (``rss``) and its peak so far (``peak``)."""


async def deploy_all(
    client: Client, stack: LocalStack, services: list[Service], version: str
) -> tuple[float, float, list[float]]:
    """Start a deployment of ``version`` of every service at once; wait for all of them.

    Returns the seconds to the last start answered, to the last result, and each one's own.
    """
    began = time.perf_counter()
    started_at: list[float] = []

    async def one(service: Service) -> tuple[float, float]:
        before = time.perf_counter()
        request = deployment_request(service.name, stack.environment, service.env, version, BY)
        handle = await start(client, request, task_queue())
        started_at.append(time.perf_counter())
        final = await final_status(handle)
        if final.state != State.SUCCEEDED:
            raise RuntimeError(
                f"{service.name}, version {version}: ended {final.state.value}: {final.report}"
            )
        return before, time.perf_counter()

    times = await asyncio.wait_for(asyncio.gather(*(one(s) for s in services)), TIMEOUT)
    return (
        max(started_at) - began,
        max(end for _, end in times) - began,
        [end - before for before, end in times],
    )


def check(services: list[Service], active_before: dict[str, Color], version: str) -> None:
    """Every service active on ``version`` in the other color, with all the traffic, the old
    color at zero; RuntimeError naming those that are not."""
    wrong = []
    for service in services:
        state = read_state(service.env)
        wanted = other_color(active_before[service.name])
        problems = mismatches(state, wanted, version, service.desired_count)
        if problems:
            wrong.append(f"{service.name}: {'; '.join(problems)}")
    if wrong:
        raise RuntimeError(f"{len(wrong)} deployments of version {version} went wrong: {wrong}")


# --- the whole run --------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the run was measured with."""

    deployments: int
    rounds: int
    cpus: int | None
    health_poll: float
    drain_poll: float
    integration_checks: list[str]
    server_config: dict[str, Any]
    create_seconds: float
    """Creating the services in moto: not measured as part of any round."""
    warmup: float
    """The warm-up deployment's start request → result."""
    worker_memory_before_mb: dict[str, float]
    """The worker's memory after the warm-up, before the first round."""


@dataclass
class Results:
    setup: Setup
    rounds: list[Round]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Results:
    """Start the local environment, create the services, measure, stop everything."""
    with bench_stack(CONFIG_DIR / "deploy.toml", say, server_config=args.server_config) as stack:
        return measure_on(stack, lambda client: measure(client, stack, args, say), say)


async def measure(
    client: Client, stack: LocalStack, args: argparse.Namespace, say: Callable[[str], None]
) -> Results:
    """Create the services, the warm-up, then every round; see the module's docstring."""
    if stack.worker is None:
        raise RuntimeError("local_stack started no worker")
    worker_pid = stack.worker.pid
    began = time.perf_counter()
    services = create_services(stack, args.deployments, say)
    created = time.perf_counter() - began
    demo = _report.with_bake(stack.environment_config(), 0)
    warmup_began = time.perf_counter()
    request = deployment_request(stack.resources.service, stack.environment, demo, "2", BY)
    handle = await start(client, request, task_queue())
    final = await asyncio.wait_for(final_status(handle), TIMEOUT)
    warmup = time.perf_counter() - warmup_began
    if final.state != State.SUCCEEDED:
        raise RuntimeError(f"the warm-up deployment ended {final.state.value}: {final.report}")
    say(f"warm-up (not counted): one deployment of {stack.resources.service} in {warmup:.3f}s")

    first = services[0].env
    results = Results(
        setup=Setup(
            deployments=args.deployments,
            rounds=args.rounds,
            create_seconds=created,
            warmup=warmup,
            worker_memory_before_mb=_report.memory_mb(worker_pid),
            **_report.deployment_setup(first, args.server_config),
        ),
        rounds=[],
    )
    cpu = CpuMeter()
    for number in range(1, args.rounds + 1):
        version = str(number + 1)
        before = {s.name: read_state(s.env).ssm.active_color for s in services}
        cpu_before = _report.cpu_reading(cpu)
        starts, wall, each = await deploy_all(client, stack, services, version)
        cpu_after = _report.cpu_reading(cpu)
        memory = _report.memory_mb(worker_pid)
        if stack.worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {stack.worker.returncode}")
        check(services, before, version)
        results.rounds.append(
            Round(
                round=number,
                version=version,
                wall=wall,
                starts=starts,
                each=_report.stats(each),
                cpu=_report.cpu_used(cpu_before, cpu_after),
                worker_memory_mb=memory,
            )
        )
        say(
            f"round {number}/{args.rounds}: {len(services)} deployments of version {version}"
            f" in {wall:.1f}s, all succeeded and checked"
        )
    return results


# --- output -------------------------------------------------------------------------------------


def summary(results: Results) -> dict[str, Any]:
    """Medians, minima and maxima over the rounds, and per deployment."""
    rounds = results.rounds
    n = results.setup.deployments
    stats = _report.stats
    figures: dict[str, Any] = {
        "wall": stats([r.wall for r in rounds]),
        "starts": stats([r.starts for r in rounds]),
        "each_median": stats([r.each["median"] for r in rounds]),
        "each_max": stats([r.each["max"] for r in rounds]),
        "deployments_per_second": stats([n / r.wall for r in rounds]),
    }
    for key, used in _report.cpu_measures([r.cpu for r in rounds], CPU_NAMES).items():
        figures[key] = stats(used)
        figures[f"{key}_per_deployment"] = stats([u / n for u in used])
    ours = [sum(r.cpu.get(name, 0.0) for name in CpuMeter.NAMES.values()) for r in rounds]
    if all(r.cpu for r in rounds):
        figures["cpu_ours"] = stats(ours)
        if results.setup.cpus:
            # On otherwise idle CPUs the round could not take less: the work is CPU time.
            figures["cpu_bound_wall"] = stats([o / results.setup.cpus for o in ours])
    if all(r.worker_memory_mb for r in rounds):
        figures["worker_peak_mb"] = max(r.worker_memory_mb["peak"] for r in rounds)
    return figures


def as_json(results: Results) -> str:
    """One JSON document: the setup, every round and the summary."""
    return _report.json_text({**asdict(results), "summary": summary(results)})


def report(results: Results) -> str:
    """The table and the summary lines, for a terminal."""
    s = results.setup
    figures = summary(results)
    server = _report.server_text(s.server_config)
    lines = [
        f"scale benchmark: {s.deployments} deployments of {s.deployments} services at once,"
        f" {s.rounds} round{'s' if s.rounds != 1 else ''}, on ONE worker (worker.py), the"
        f" Temporal dev server with {server} and moto; {s.cpus} CPUs shared by all of them",
        f"each: one region, healthy at the first check (polled every {s.health_poll:g}s),"
        f" integration check {', '.join(s.integration_checks)}, no bake, no players (drain"
        f" polled every {s.drain_poll:g}s); services created in moto in {s.create_seconds:.1f}s,"
        f" one warm-up deployment {s.warmup:.3f}s (not counted)",
        "",
    ]
    names = [n for n in CPU_NAMES if all(n in r.cpu for r in results.rounds)]
    rows = [
        [
            str(r.round),
            f"{r.wall:.3f}",
            f"{r.starts:.3f}",
            f"{r.each['median']:.3f}",
            f"{r.each['max']:.3f}",
            *(f"{r.cpu[n]:.2f}" for n in names),
            f"{r.worker_memory_mb.get('rss', 0):.0f}",
            f"{r.worker_memory_mb.get('peak', 0):.0f}",
        ]
        for r in results.rounds
    ]
    headers = [
        "round",
        "wall s",
        "all started s",
        "each median s",
        "each max s",
        *(f"CPU s {n}" for n in names),
        "worker RSS MB",
        "worker peak MB",
    ]
    columns: list[list[float] | None] = [None]
    columns += [[float(row[i]) for row in rows] for i in range(1, len(headers))]
    lines += _report.table(headers, _report.with_stats(rows, columns))
    before = s.worker_memory_before_mb
    if before:
        lines.append(
            f"    worker before the first round: RSS {before['rss']:.0f} MB, peak"
            f" {before['peak']:.0f} MB"
        )
    else:
        lines.append("    (no CPU or memory figures: /proc is not available here)")
    wall = figures["wall"]["median"]
    lines += [
        "",
        f"{s.deployments} deployments at once: median {wall:.3f} s from the first start to the"
        f" last result ({figures['deployments_per_second']['median']:.1f} deployments/s); each"
        f" took {figures['each_median']['median']:.3f} s (median), the slowest"
        f" {figures['each_max']['median']:.3f} s",
    ]
    if "cpu_worker" in figures:
        lines.append(
            f"worker: {figures['cpu_worker']['median']:.2f} CPU s"
            f" ({figures['cpu_worker_per_deployment']['median'] * 1000:.1f} ms per deployment),"
            f" peak memory {figures.get('worker_peak_mb', 0):.0f} MB; "
            + ", ".join(
                f"{n}: {figures[f'cpu_{n}']['median']:.2f} CPU s"
                for n in names
                if n not in ("worker", "others")
            )
        )
    if "cpu_bound_wall" in figures:
        lines.append(
            f"the worker, Temporal and moto used {figures['cpu_ours']['median']:.1f} CPU s: at"
            f" least {figures['cpu_bound_wall']['median']:.1f} s on {s.cpus} otherwise idle"
            f" CPUs; other processes on this shared machine used"
            f" {figures['cpu_others']['median']:.1f} CPU s meanwhile (of"
            f" {wall * (s.cpus or 1):.0f} CPU s the round's wall time offered)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _report.arguments(
        "python -m bench.scale",
        "Many deployments of different services at once, on one worker.",
        DEFAULT_ROUNDS,
    )
    parser.add_argument(
        "--deployments", type=int, default=DEFAULT_DEPLOYMENTS, help="default: %(default)s"
    )
    _report.add_server_config(parser)
    args = _report.parse(parser, argv)
    if not 1 <= args.deployments <= 1000:
        parser.error("--deployments must be 1 to 1000 (service names have three digits)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every deployment did what it should."""
    return _report.run_benchmark(parse_args(argv), run, as_json, report)


if __name__ == "__main__":
    sys.exit(main())
