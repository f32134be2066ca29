"""What a MultiRegionDeployment learned and did, in order, read back from its history.

The parent decides in workflow tasks: each one sees the events recorded since the last
(progress reports and messages signalled to it, its children's starts and ends) and issues
commands (a child's start, a signal to a child). ``ParentLog`` keeps those events with the
workflow task that handled them, and replays the parent's view of its regions, so the rules of
docs/regions.md can be checked on the order in which things really happened rather than on
timestamps: which regions a rollback had to reach, when a wave was due to start.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadConverter

from models.deployment import DeploymentStatus, Phase, State
from models.messages import RollbackRequest

Kind = Literal["started", "ended", "report", "message", "signalled"]

_CLOSES = {
    "child_workflow_execution_completed_event_attributes": State.SUCCEEDED,
    "child_workflow_execution_failed_event_attributes": State.FAILED,
    "child_workflow_execution_canceled_event_attributes": State.FAILED,
    "child_workflow_execution_timed_out_event_attributes": State.FAILED,
    "child_workflow_execution_terminated_event_attributes": State.FAILED,
}
"""A child's end, and how the parent counts it: anything but a completion is a failure."""

PAST_BAKE = (Phase.DRAINING, Phase.CLEANING_UP)


@dataclass
class Entry:
    """One event of the parent's history that matters here."""

    id: int
    kind: Kind
    """``started``: the parent started a region's child (the command); ``ended``: the child
    ended; ``report``: the child's progress report; ``message``: an approve or rollback signalled
    to the parent; ``signalled``: one the parent sent to a child."""
    task: int
    """The workflow task that saw it (the first one started after it); for the parent's own
    commands (``started``, ``signalled``), the one that issued them."""
    region: str | None = None
    name: str = ""
    """The signal's name, for ``message`` and ``signalled``."""
    state: State | None = None
    """How an ``ended`` child ended (SUCCEEDED or not)."""
    report: DeploymentStatus | None = None
    rollback: RollbackRequest | None = None


@dataclass
class ParentLog:
    """The entries of one parent's history, in order."""

    parent_id: str
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def of(
        cls, history: WorkflowHistory, regions: list[str], converter: PayloadConverter
    ) -> "ParentLog":
        """Read ``history`` of a parent deploying to ``regions``."""
        log = cls(history.workflow_id)
        children = {f"{history.workflow_id}-{region}": region for region in regions}
        unseen: list[Entry] = []
        task = 0
        for event in history.events:
            kind = event.WhichOneof("attributes") or ""
            if kind == "workflow_task_started_event_attributes":
                for seen in unseen:
                    seen.task = event.event_id
                unseen = []
                task = event.event_id
                continue
            entry = log._entry(event, kind, children, converter, task)
            if entry is not None:
                log.entries.append(entry)
                if entry.kind not in ("started", "signalled"):
                    unseen.append(entry)
        for never in unseen:
            never.task = 1 << 62  # not seen by any workflow task
        return log

    @staticmethod
    def _entry(
        event: HistoryEvent,
        kind: str,
        children: dict[str, str],
        converter: PayloadConverter,
        task: int,
    ) -> Entry | None:
        attributes: Any = getattr(event, kind, None)
        if kind == "start_child_workflow_execution_initiated_event_attributes":
            region = children.get(attributes.workflow_id)
            return None if region is None else Entry(event.event_id, "started", task, region)
        if kind in _CLOSES:
            region = children.get(attributes.workflow_execution.workflow_id)
            if region is None:
                return None
            return Entry(event.event_id, "ended", task, region, state=_CLOSES[kind])
        if kind == "workflow_execution_signaled_event_attributes":
            payloads = attributes.input.payloads
            if attributes.signal_name == "region_progress":
                report = converter.from_payload(payloads[0], DeploymentStatus)
                region = children.get(report.deployment_id)
                return Entry(event.event_id, "report", task, region, report=report)
            entry = Entry(event.event_id, "message", task, name=attributes.signal_name)
            if attributes.signal_name == "rollback":
                entry.rollback = converter.from_payload(payloads[0], RollbackRequest)
            return entry
        if kind == "signal_external_workflow_execution_initiated_event_attributes":
            region = children.get(attributes.workflow_execution.workflow_id)
            if region is None:
                return None
            entry = Entry(event.event_id, "signalled", task, region, name=attributes.signal_name)
            if attributes.signal_name == "rollback":
                entry.rollback = converter.from_payload(
                    attributes.input.payloads[0], RollbackRequest
                )
            return entry
        return None

    # --- what the parent saw --------------------------------------------------------------

    def started(self, region: str) -> Entry | None:
        """The command that started the region's child, if the parent gave one."""
        return next((e for e in self.entries if e.kind == "started" and e.region == region), None)

    def ended(self, region: str) -> Entry | None:
        """The region's child's end, as the parent saw it."""
        return next((e for e in self.entries if e.kind == "ended" and e.region == region), None)

    def failures(self) -> list[Entry]:
        """Regions that ended without succeeding, in the order the parent saw them."""
        return [e for e in self.entries if e.kind == "ended" and e.state != State.SUCCEEDED]

    def rollback_messages(self) -> list[Entry]:
        """The rollbacks signalled to the parent, in order."""
        return [e for e in self.entries if e.kind == "message" and e.name == "rollback"]

    def rollbacks_sent(self, region: str, after: Entry) -> list[Entry]:
        """The rollbacks the parent sent the region's child in the task that saw ``after`` or
        later."""
        return [
            e
            for e in self.entries
            if e.kind == "signalled"
            and e.name == "rollback"
            and e.region == region
            and e.id > after.id
        ]

    def all_rollbacks_sent(self) -> list[Entry]:
        """Every rollback the parent sent a child."""
        return [e for e in self.entries if e.kind == "signalled" and e.name == "rollback"]

    def running_before(self, task: int) -> tuple[set[str], set[str]]:
        """The regions the parent had started before workflow task ``task`` (its own commands
        of earlier tasks) and did not know to have ended: those it knew ended in an earlier
        task, and those whose end reached it in ``task`` itself, which it may or may not have
        counted as running there (the order of one task's events is the SDK's)."""
        started = {e.region for e in self.entries if e.kind == "started" and e.id < task}
        ended_before: set[str | None] = set()
        ending_now: set[str | None] = set()
        for entry in self.entries:
            done = entry.kind == "ended" or (
                entry.kind == "report" and entry.report is not None and _done(entry.report)
            )
            if done and entry.task < task:
                ended_before.add(entry.region)
            elif done and entry.task == task:
                ending_now.add(entry.region)
        running = {r for r in started if r is not None and r not in ended_before}
        return running - ending_now, running & {r for r in ending_now if r is not None}

    def first_task_past_bake(self, wave: list[str]) -> int | None:
        """The first workflow task at the end of which every region of ``wave`` had, as far as
        the parent knew, passed its bake (reached draining or cleaning up, or succeeded)."""
        seen: dict[str, DeploymentStatus] = {}
        succeeded: set[str] = set()
        for index, entry in enumerate(self.entries):
            if entry.region in wave and entry.kind == "report" and entry.report is not None:
                last = seen.get(entry.region)
                if last is None or entry.report.report_number >= last.report_number:
                    seen[entry.region] = entry.report
            elif entry.region in wave and entry.kind == "ended":
                if entry.state == State.SUCCEEDED:
                    succeeded.add(entry.region)
                seen.pop(entry.region, None)
            following = self.entries[index + 1] if index + 1 < len(self.entries) else None
            if following is not None and following.task == entry.task:
                continue  # the task has more to see
            if all(r in succeeded or (r in seen and _past_bake(seen[r])) for r in wave):
                return entry.task
        return None


def _done(report: DeploymentStatus) -> bool:
    return report.phase == Phase.DONE


def _past_bake(report: DeploymentStatus) -> bool:
    if report.state == State.SUCCEEDED:
        return True
    return report.state == State.RUNNING and report.phase in PAST_BAKE
