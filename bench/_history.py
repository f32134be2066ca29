"""Where a run's time went, from the workflows' histories (the server's clock): the workflow and
every child it started (long health, bake and drain waits; a multi-region deployment's regions),
and theirs."""

import statistics
from collections.abc import Mapping, Sequence

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench._harness import Figures

History = Sequence[HistoryEvent]
# Event type → (the attribute naming the earlier event, the span's name): what waited, what ran.
SPANS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: ("scheduled_event_id", "task_wait"),
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: ("started_event_id", "task_run"),
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: ("scheduled_event_id", "activity_wait"),
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: ("started_event_id", "activity_run"),
}


def at(event: HistoryEvent) -> float:
    """When the server recorded ``event``, in seconds since the epoch."""
    return event.event_time.ToNanoseconds() / 1e9


def children(events: History) -> list[str]:
    """The workflow IDs of the children one history started."""
    started = EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    return [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for e in events
        if e.event_type == started
    ]


async def histories(client: Client, workflow_id: str, run_id: str | None) -> dict[str, History]:
    """Workflow ID → history, of the workflow (the run ``run_id``) and of every child it
    started, and theirs (their latest runs: none of them continues as new)."""
    found: dict[str, History] = {}
    pending = [workflow_id]
    while pending:
        wanted = pending.pop()
        handle = client.get_workflow_handle(
            wanted, run_id=run_id if wanted == workflow_id else None
        )
        found[wanted] = list((await handle.fetch_history()).events)
        pending += children(found[wanted])
    return found


def figures(recorded: Mapping[str, History], root: str) -> Figures:
    """Of ``root``'s history and its descendants' in ``recorded`` (``histories``): ``workflow``
    (root started → closed), how many ``workflow_tasks``, ``activities`` and ``children``; the
    sums of ``task_waits`` (scheduled → started: the server handing a task to the worker),
    ``task_runs`` (started → completed: the worker running the workflow code),
    ``activity_waits`` and ``activity_runs``, and the median ``task_wait``, ``task_run`` and
    ``activity_run``."""
    spans: dict[str, list[float]] = {name: [] for _, name in SPANS.values()}
    mine, pending = [], [root]
    while pending:
        events = recorded[pending.pop()]
        mine.append(events)
        pending += children(events)
        when = {e.event_id: at(e) for e in events}
        for e in events:
            if e.event_type in SPANS:
                earlier, name = SPANS[e.event_type]
                attributes = getattr(e, str(e.WhichOneof("attributes")))
                spans[name].append(at(e) - when[getattr(attributes, earlier)])
    every = [e for events in mine for e in events]
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return {
        "workflow": at(recorded[root][-1]) - at(recorded[root][0]),
        "workflow_tasks": len(spans["task_run"]),
        "activities": sum(1 for e in every if e.event_type == scheduled),
        "children": len(mine) - 1,
        **{f"{name}s": sum(values) for name, values in spans.items()},
        **{name: statistics.median(values) for name, values in spans.items() if values},
    }
