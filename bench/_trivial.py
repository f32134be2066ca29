"""A workflow that runs N activities doing nothing, one after the other: Temporal's own cost.

Registered on the benchmarks' worker (``bench/_worker.py``) for ``bench/overhead.py``, never on
the product's. Each activity goes through the same ``Calls.activity`` as a deployment's steps
and returns at once: what remains is the orchestration.
"""

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows.calls import Calls


@activity.defn(name="bench_do_nothing")
def do_nothing(step: int) -> int:
    """Return ``step``: no I/O, no work."""
    return step


@workflow.defn(name="BenchTrivial")
class TrivialWorkflow:
    """Run ``do_nothing`` ``activities`` times in sequence; the result is how many ran."""

    @workflow.run
    async def run(self, activities: int) -> int:
        """One activity after the other, as the deployment's sequence does."""
        calls = Calls()
        for step in range(activities):
            await calls.activity(do_nothing, step, summary=f"step {step + 1} of {activities}")
        return activities
