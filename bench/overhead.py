"""A deployment next to a workflow that does nothing with as many activities: the orchestration's share.

    python -m bench.overhead [--rounds 5] [--json] [--server-config KEY=VALUE]

On the local environment in one region (``bench/_harness.py``), times from just before the
start request to the result: ``deployment``, ``BlueGreenDeployment`` of a new version as
``client.py deploy`` starts it, with nothing to wait for (healthy at the first check, the demo's
integration check, no bake, no players), checked afterwards; and ``trivial``
(``bench/_trivial.py``), exactly as many activities as the warm-up deployment's history counts
(its children's included), one after the other, each returning at once, through the same
``Calls.activity``. Both run on one worker, ``worker.py`` with the trivial workflow registered
as well (``bench/_worker.py``): the same thread pool, slots and task queue.

Reported: the ratio deployment / trivial, the time per activity, and from the histories where
the time went (workflow tasks waiting to be handed to the worker and running on it, activities
running) and the CPU seconds of the worker, the dev server and moto. The dev server's history
service reads its transfer queue at most 20 times a second
(``history.transferProcessorMaxPollRPS``), so every workflow task waits up to 50 ms for it: that
pace, not the workflow code, sets both times; ``--server-config
history.transferProcessorMaxPollRPS=1000`` lifts it.
"""

import asyncio
import itertools
import sys
import time

from bench import _harness, _history
from bench._harness import Benchmark, Figures, Measure, Run, Sample
from bench._trivial import TrivialWorkflow
from local.state import read_state
from models.colors import other_color
from runtime.connection import task_queue

DEPLOYMENT, TRIVIAL = "deployment", "trivial"
BY = "bench/overhead.py"


async def prepare(run: Run) -> dict[str, Measure]:
    """The two kinds; the trivial one runs as many activities as the warm-up deployment did."""
    stack, client = run.local()
    env = _harness.with_bake(stack.environment_config(), 0)
    versions, trivial_ids = itertools.count(2), itertools.count()
    activities = 0
    run.setup["deployment"] = "one region, nothing to wait for, no bake, no players"

    async def deployment() -> Sample:
        nonlocal activities
        version = str(next(versions))
        active = other_color(read_state(env).ssm.active_color)
        wanted = _harness.request(stack, env, version, BY)
        handle, _, figures = await _harness.deploy(client, wanted)
        _harness.check(env, active, version, stack.resources.desired_count, f"version {version}")
        recorded = await _history.histories(client, handle.id, handle.run_id)
        figures.update(_history.figures(recorded, handle.id))
        if not activities:
            activities = int(figures["activities"])
            run.setup["trivial"] = f"{activities} activities doing nothing, one after another"
        return Sample(figures)

    async def trivial() -> Sample:
        cpu = _harness.cpu_seconds()
        began = time.perf_counter()
        handle = await client.start_workflow(
            TrivialWorkflow.run,
            activities,
            id=f"bench-trivial-{next(trivial_ids)}",
            task_queue=task_queue(),
        )
        ran = await asyncio.wait_for(handle.result(), _harness.TIMEOUT)
        figures = {"wall": time.perf_counter() - began, **_harness.cpu_used(cpu)}
        if ran != activities:
            raise RuntimeError(f"the trivial workflow ran {ran} activities, not {activities}")
        recorded = await _history.histories(client, handle.id, handle.run_id)
        return Sample({**figures, **_history.figures(recorded, handle.id)})

    return {DEPLOYMENT: deployment, TRIVIAL: trivial}


def summarize(medians: dict[str, Figures]) -> Figures:
    """The time per activity and the share of it workflow tasks spent waiting for the server."""
    n = medians[DEPLOYMENT]["activities"]
    deployment, trivial = medians[DEPLOYMENT]["wall"], medians[TRIVIAL]["wall"]
    return {
        "per_activity_deployment": deployment / n,
        "per_activity_trivial": trivial / n,
        "extra_per_activity": (deployment - trivial) / n,
        "task_waits_share_deployment": medians[DEPLOYMENT]["task_waits"] / deployment,
        "task_waits_share_trivial": medians[TRIVIAL]["task_waits"] / trivial,
    }


BENCHMARK = Benchmark(
    name="overhead",
    about="a deployment next to a workflow doing nothing with as many activities",
    kinds=(DEPLOYMENT, TRIVIAL),
    prepare=prepare,
    worker_args=("-m", "bench._worker"),
    labels={
        "wall": "seconds from the start request to the result",
        "ratio": "deployment / trivial, median wall times",
        "per_activity_deployment": "deployment: seconds per activity",
        "per_activity_trivial": "trivial: seconds per activity",
        "extra_per_activity": "the deployment's extra seconds per activity",
        "task_waits_share_deployment": "deployment: share of its time waiting for the server",
        "task_waits_share_trivial": "trivial: share of its time waiting for the server",
    },
    ratios={"ratio": (DEPLOYMENT, TRIVIAL, "wall")},
    summarize=summarize,
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
