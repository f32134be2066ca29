"""One operation at a time per service and environment, decided by Temporal itself.

Every top-level operation (a one-region deployment, a multi-region deployment's parent, a switch
back) first starts a child workflow ``EnvironmentLease`` with the fixed ID
``lease-<service>-<environment>``, before it reads or changes anything. Temporal never runs two
workflows with one ID: while one operation holds the lease, another's start of it fails on the
server (``WorkflowAlreadyStartedError``), and that operation ends at once, having done nothing.
The regions of a multi-region deployment take none: their parent holds it for all of them.

The holder releases the lease as the last thing it does, after its last activity, and closes
only once the lease has ended: whoever sees the holder closed can start the next operation.
Should the holder close without releasing it (terminated, timed out), the lease's parent close
policy, TERMINATE, has the server end it a moment later. The lease ignores cancel requests: only
its holder, or a person terminating it by hand, frees the service and environment. Its parent is
the holder (the Web UI shows it; ``describe`` gives it as ``parent_id``); its memo says the same.
"""

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

# Patch (docs/workflow-changes.md): top-level operations take the lease before anything else,
# and release it at their end. Runs started before it have no lease in their histories.
PATCH = "environment-lease"
T = TypeVar("T")


def lease_id(service: str, environment: str) -> str:
    """The lease's workflow ID: one per service and environment, as a deployment's is."""
    return f"lease-{service}-{environment}"


@workflow.defn(name="EnvironmentLease")
class EnvironmentLease:
    """Held by its parent workflow, the operation running on a service and environment, until
    that parent sends ``release`` (or closes: the server then terminates the lease)."""

    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        """The holder is done: end."""
        self._released = True

    @workflow.run
    async def run(self) -> None:
        """Wait for ``release``; a lease started on its own holds nothing and ends at once."""
        parent = workflow.info().parent
        if parent is None:
            return
        while not self._released:
            try:
                await workflow.wait_condition(lambda: self._released)
            except asyncio.CancelledError:
                # Ending now would let another operation in while the holder still runs.
                workflow.logger.warning(
                    "lease %s: cancel request ignored; it ends when %s ends",
                    workflow.info().workflow_id,
                    parent.workflow_id,
                )


class Lease:
    """What ``take`` came back with: the lease held, refused, or none taken by this run."""

    def __init__(
        self, held: workflow.ChildWorkflowHandle[Any, Any] | None = None, refusal: str | None = None
    ) -> None:
        self._held = held
        self.refusal = refusal
        """Why this run may not go on: another operation holds the lease. None otherwise."""

    async def held_during(self, work: Awaitable[T]) -> T:
        """``work``'s result; the lease released after it, however it ended."""
        try:
            result = await work
        except (Exception, asyncio.CancelledError):
            # Not on GeneratorExit: a worker evicting the run from its cache awaits nothing.
            await self.release()
            raise
        await self.release()
        return result

    async def release(self) -> None:
        """End the lease, if this run holds it, and wait until it has ended. Call it last."""
        if self._held is None:
            return
        held, self._held = self._held, None
        try:
            await held.signal(EnvironmentLease.release)
            await held
        except Exception as err:  # terminated by hand: it is not held any more either way
            workflow.logger.warning("lease %s ended before its release: %s", held.id, err)


async def take(service: str, environment: str) -> Lease:
    """Hold the lease on ``service`` and ``environment``, until ``release``.

    Nothing held, and no refusal, for a run that takes none: a region of a multi-region
    deployment (its parent holds it), or a run started before the patch. When another
    operation holds it, the refusal's reason: this run has done nothing and must end.
    """
    if workflow.info().parent is not None or not workflow.patched(PATCH):
        return Lease()
    holder = workflow.info().workflow_id
    lease = lease_id(service, environment)
    try:
        held = await workflow.start_child_workflow(
            EnvironmentLease.run,
            id=lease,
            # Should the holder close without releasing it (terminated, timed out), the server
            # terminates the lease: no worker needed.
            parent_close_policy=workflow.ParentClosePolicy.TERMINATE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"{service}/{environment}: held by {holder}",
            memo={"holder": holder, "service": service, "environment": environment},
        )
    except WorkflowAlreadyStartedError:
        return Lease(
            refusal=(
                f"another operation on {service}/{environment} is running (it holds {lease},"
                " as its parent workflow); wait for it to end"
            )
        )
    return Lease(held)
