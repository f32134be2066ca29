"""Five regions at once vs. one region: the wall time of the same deployment, side by side.

    python -m bench.multi_region [--rounds 5] [--json] [--bake SECONDS] [--server-config KEY=VALUE]

On the local environment in five regions (``bench/_harness.py``), times three deployments from
just before the start request to the result, started as ``client.py deploy`` starts them (on a
namespace without the BlueGreen* search attributes, as the earlier figures were measured):
``one_region``, ``BlueGreenDeployment`` to us-west-2; ``parent_one_region``,
``MultiRegionDeployment`` to us-west-2 alone; ``five_regions``, ``MultiRegionDeployment`` to the
five regions in one wave. Nothing to wait for, so that what is measured is the orchestration:
healthy at the first check, the demo's integration check, no bake, no players; twelve
activities per region. Each deploys a new version over what the last left, and is checked in
every region it covered. ``--bake SECONDS`` bakes every one that long (the alarm read every
second), as real deployments wait.

All of it twice, each on a local environment of its own: with the dev server's defaults, and
configured for throughput (``TUNED``). By default its history service reads its transfer queue
(which hands each workflow and activity task to matching, starts children, delivers signals) at
most 20 times a second once a short burst is spent (``history.transferProcessorMaxPollRPS``):
each such step waits up to 50 ms, most of a one-region deployment's time, and five regions'
extra work hides in those waits. Tuned, a step waits a millisecond or two, and what five
regions cost over one is their CPU time: the worker, the dev server and moto share this
machine's CPUs. The summary's ``ratio`` (defaults) and ``ratio_tuned`` are five regions / one
region, the aim at most 1.3 times. The histories tell where the time went: the parent's start
to its last child's, the slowest region's workflow (its task waits and runs, activity runs, its
last report to the parent → its end), the last child's end to the parent's end.
"""

import itertools
import sys

from temporalio.api.enums.v1 import EventType

from bench import _harness, _history
from bench._harness import DEFAULT, Benchmark, Figures, Measure, Run, Sample
from cli.deployments import AnyRequest
from local.stack import DEMO_REGIONS, REGION
from local.state import read_state
from models.colors import other_color
from models.multi_region import MultiRegionRequest

AIM = 1.3
"""The ratio five regions / one region this benchmark is meant to stay under."""
BY = "bench/multi_region.py"
KINDS = {"one_region": (REGION,), "parent_one_region": (REGION,), "five_regions": DEMO_REGIONS}
"""Kind → the regions it deploys to; all but the first through the parent workflow."""
TUNED: dict[str, object] = {
    # The transfer queue read on every new task instead of at most 20 times a second.
    "history.transferProcessorMaxPollRPS": 1000,
    # An activity handed to the worker in the answer to the workflow task that scheduled it,
    # rather than through the transfer queue and matching.
    "system.enableActivityEagerExecution": True,
}
"""The dev server configured for throughput. Measured (3 rounds each) and left out: one
task-queue partition (``matching.numTaskqueueRead/WritePartitions`` 1),
``matching.forwarderMaxOutstandingPolls`` 20, ``frontend.namespaceRPS``, ``history.rps`` and
``matching.rps`` 100000: none changed either time beyond the run-to-run noise of this shared
machine."""


async def prepare(run: Run) -> dict[str, Measure]:
    """The three kinds, each deploying the next version."""
    stack, client = run.local()
    if run.args.bake < 0:
        raise RuntimeError("--bake must not be negative")
    configs = {r: _harness.with_bake(stack.region_config(r), run.args.bake) for r in stack.regions}
    run.setup["regions"] = ", ".join(stack.regions)
    run.setup["bake"] = f"{run.args.bake:g} s" if run.args.bake else "none"
    versions = itertools.count(2)

    def measure(kind: str, regions: tuple[str, ...]) -> Measure:
        async def deploy() -> Sample:
            version = str(next(versions))
            before = {r: read_state(configs[r]).ssm.active_color for r in regions}
            wanted: AnyRequest = _harness.request(stack, configs[REGION], version, BY)
            if kind != "one_region":
                wanted = MultiRegionRequest(
                    service=wanted.service,
                    environment=wanted.environment,
                    version=version,
                    image=wanted.image,
                    waves=[[configs[r] for r in regions]],
                    requested_by=BY,
                )
            handle, _, figures = await _harness.deploy(client, wanted)
            for r in regions:
                desired = stack.regional[r].desired_count
                what = f"{kind}, version {version}, {r}"
                _harness.check(configs[r], other_color(before[r]), version, desired, what)
            recorded = await _history.histories(client, handle.id, handle.run_id)
            return Sample({**figures, **history_figures(recorded, handle.id)})

        return deploy

    return {kind: measure(kind, regions) for kind, regions in KINDS.items()}


def history_figures(recorded: dict[str, _history.History], root: str) -> Figures:
    """``_history.figures`` of the whole deployment; of a parent, when its children started
    and ended; of the slowest region's workflow (the deployment waited for it), its time, task
    waits and runs, activity runs, and its last report to the parent sent → its end."""
    events = recorded[root]
    started, closed = {}, {}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            attributes = e.child_workflow_execution_started_event_attributes
            started[attributes.workflow_execution.workflow_id] = _history.at(e)
        elif e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            done = e.child_workflow_execution_completed_event_attributes
            closed[done.workflow_execution.workflow_id] = _history.at(e)
    found = _history.figures(recorded, root)
    slowest = max(closed, key=lambda c: closed[c] - started[c], default=root)
    region = _history.figures(recorded, slowest)
    found["slowest_child"] = region["workflow"]
    for key in ("task_waits", "task_runs", "activity_runs"):
        found[f"slowest_{key}"] = region[key]
    if closed:
        reports = [
            e
            for e in recorded[slowest]
            if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
        ]
        end = _history.at(recorded[slowest][-1])
        found["slowest_last_report"] = end - _history.at(reports[-1]) if reports else 0.0
        found["children_started"] = max(started.values()) - _history.at(events[0])
        found["after_children"] = _history.at(events[-1]) - max(closed.values())
    return found


BENCHMARK = Benchmark(
    name="multi_region",
    about="five regions at once next to the same deployment in one region",
    kinds=tuple(KINDS),
    prepare=prepare,
    regions=DEMO_REGIONS,
    configs={DEFAULT: {}, "tuned": TUNED},
    # As in the earlier runs, whose figures these compare with: no search attributes to keep.
    search_attributes=False,
    options={"bake": 0.0},  # seconds
    labels={
        "wall": "seconds from the start request to the result",
        "children_started": "parent started → last child started",
        "slowest_child": "the (slowest) region's workflow, started → closed",
        "slowest_task_waits": "  its workflow tasks waiting to start (sum)",
        "slowest_task_runs": "  its workflow tasks running (sum)",
        "slowest_activity_runs": "  its activities running (sum)",
        "slowest_last_report": "  its last report to the parent sent → it closed",
        "after_children": "last child closed → parent closed",
        "ratio": f"five regions / one region (the aim: at most {AIM:g}{_harness.TIMES})",
        "ratio_five_to_parent_one": "five regions / the parent with one",
        "ratio_parent_one_to_one": "the parent with one region / one region",
    },
    ratios={
        "ratio": ("five_regions", "one_region", "wall"),
        "ratio_five_to_parent_one": ("five_regions", "parent_one_region", "wall"),
        "ratio_parent_one_to_one": ("parent_one_region", "one_region", "wall"),
    },
)


if __name__ == "__main__":
    sys.exit(_harness.main(BENCHMARK))
