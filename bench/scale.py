"""Many deployments of different services at once on one worker: wall time, CPU and memory.

    python -m bench.scale [--deployments 100] [--rounds 1] [--json] [--server-config KEY=VALUE]

On the local environment in one region (``bench/_harness.py``), creates ``--deployments`` more
services in moto, each with the demo's full set of resources (``create_demo_resources``: ECS
clusters and services, a task family, an ALB, an alarm, SSM parameters) and its own deploy.toml
under .local/bench/scale/, all pointing at the demo's colors, which have no players: the
deployments have nothing to wait for. No tasks run for these services (200 game-server
processes would measure this machine, not the orchestration): placeholder targets stand in for
them in their target groups (``placeholder_targets``). After one warm-up deployment of the demo's own service
(the worker's first creates its boto3 clients and loads the workflows' code), each round starts
a deployment of every service at once, as ``client.py deploy`` starts one, and waits for them
all: round r deploys version r + 1, and every service is checked afterwards. Measured per round:
first start request → last result, → last start answered, each deployment's own; the CPU
seconds of the worker, the dev server and moto; the worker's peak memory. ``--rounds``
defaults to 1: a round is already 100 deployments.
"""

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from bench import _harness
from bench._harness import Benchmark, Figures, Measure, Run, Sample
from local.aws_resources import create_demo_resources, placeholder_targets, write_demo_config
from local.processes import STATE_DIR
from local.state import read_state
from models.colors import other_color
from models.config import EnvironmentConfig

CONFIG_DIR = STATE_DIR / "bench" / "scale"
BY = "bench/scale.py"
KIND = "all_at_once"


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM in /proc/PID/status), in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    # "VmHWM:    123456 kB": KiB, whatever the unit says.
    return int(status.partition("VmHWM:")[2].split()[0]) / 1024


async def prepare(run: Run) -> dict[str, Measure]:
    """Create the services in moto, deploy the demo's once as a warm-up; the round."""
    (stack, client), count = run.local(), run.args.deployments
    if not 1 <= count <= 1000:
        raise RuntimeError("--deployments must be 1 to 1000 (service names have three digits)")
    assert stack.worker is not None  # local_stack starts one
    worker = stack.worker.pid
    began = time.perf_counter()
    services = []
    for number in range(count):
        name = f"svc-{number:03d}"
        resources = create_demo_resources(
            stack.resources.region,
            blue_url=stack.resources.urls["blue"],
            green_url=stack.resources.urls["green"],
            service=name,
            environment=stack.environment,
        )
        placeholder_targets(resources)
        config = write_demo_config(CONFIG_DIR / f"{name}.toml", resources)
        env = _harness.with_bake(config.environment(stack.environment), 0)
        services.append((name, env, resources.desired_count))
        if (number + 1) % 25 == 0:
            run.say(f"{number + 1} of {count} services created in moto")
    run.setup["deployments"] = count
    run.setup["services_created_in_moto_s"] = round(time.perf_counter() - began, 1)
    demo = _harness.with_bake(stack.environment_config(), 0)
    _, _, warmup = await _harness.deploy(client, _harness.request(stack, demo, "2", BY))
    run.setup["warmup_deployment_s"] = round(warmup["wall"], 3)
    run.setup["worker_peak_memory_before_mb"] = round(peak_memory_mb(worker))
    rounds = 0

    async def all_at_once() -> Sample:
        nonlocal rounds
        rounds += 1
        version = str(rounds + 1)
        before = {name: read_state(env).ssm.active_color for name, env, _ in services}
        cpu = _harness.cpu_seconds()
        began = time.perf_counter()

        async def one(service: str, env: EnvironmentConfig) -> tuple[float, Figures]:
            wanted = _harness.request(stack, env, version, BY, service)
            own_start = time.perf_counter() - began
            _, _, figures = await _harness.deploy(client, wanted)
            return own_start, figures

        ran = await asyncio.gather(*(one(name, env) for name, env, _ in services))
        figures = {"wall": time.perf_counter() - began, **_harness.cpu_used(cpu)}
        each = [f["wall"] for _, f in ran]
        for name, env, desired in services:
            _harness.check(env, other_color(before[name]), version, desired, name)
        return Sample(
            {
                **figures,
                "starts": max(at + f["start"] for at, f in ran),
                "each_median": statistics.median(each),
                "each_max": max(each),
                "deployments": count,
                "deployments_per_second": count / figures["wall"],
                "worker_peak_mb": peak_memory_mb(worker),
            }
        )

    return {KIND: all_at_once}


def summarize(medians: dict[str, Figures]) -> Figures:
    """The CPU the worker used per deployment; the three processes' CPU, and that over this
    machine's CPUs: the least wall time the round could take."""
    figures = medians[KIND]
    ours = sum(figures.get(f"cpu_{name}", 0.0) for name in ("worker", "temporal", "moto"))
    return {
        "cpu_worker_per_deployment": figures.get("cpu_worker", 0.0) / figures["deployments"],
        "cpu_ours": ours,
        "cpu_ours_over_cpus": ours / (os.cpu_count() or 1),
    }


BENCHMARK = Benchmark(
    name="scale",
    about="many deployments of different services at once, on one worker",
    kinds=(KIND,),
    prepare=prepare,
    rounds=1,
    warmup=False,
    options={"deployments": 100},
    summarize=summarize,
    labels={
        "wall": "seconds from the first start request to the last result",
        "starts": "seconds to the last start request answered",
        "each_median": "one deployment, start → result (median)",
        "each_max": "one deployment, start → result (slowest)",
        "deployments_per_second": "deployments a second",
        "worker_peak_mb": "the worker's peak memory so far, MB",
        "cpu_worker_per_deployment": "worker CPU seconds per deployment",
        "cpu_ours": "CPU seconds of the worker, the dev server and moto",
        "cpu_ours_over_cpus": "the same over this machine's CPUs: the least wall time it allows",
    },
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
