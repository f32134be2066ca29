"""Safety invariants of MultiRegionDeployment under seeded chaos schedules.

Each seed is one deployment to two or three regions, in one wave or in waves, with fail fast on
or off, switch-together on or off, sometimes ``--require-approval``. Every region has a chaos
schedule of its own (``RegionChaos`` in tests/reliability/chaos_aws.py: its health, checks,
players, alarms and AWS faults), in its own fake AWS (a ``ChaosWorld``), which checks invariants
(a) and (b) on that region's model after every activity. Approvals and rollbacks go to the
parent or to a region's own deployment (``<parent ID>-<region>``) at random moments.

Once a run has ended, the test derives what each region's end must be from the schedule and
from the order in which the parent saw things happen (its history, ``ParentLog``), and compares:

- each region that ran ends by its rules: succeeded on the new color with the old one scaled
  down (as requested), or failed or rolled back with production as before, restored by the
  rule of its phase, except what its report lists as needing a person (invariant (c)); a region
  that never started was never touched;
- waves (docs/regions.md): a wave starts exactly when every region of the one before has passed
  its bake, and never once a region has failed or a rollback was accepted, fail fast or not;
- a rollback on the parent reaches every region running then; with fail fast, a region's
  failure makes the parent roll back every other running region, each of which rolls back by
  its phase's rule or refuses (its old color already shut down); without fail fast the parent
  rolls nothing back on its own, and its regions go on;
- the gate: a region waits at it until the approval (or, with switch-together, the rest of its
  wave); an approval given to the parent reaches it;
- the parent ends succeeded only when every region did, rolled back when its rollback was
  accepted, failed otherwise, naming the regions left on the new version.

A failure names its seed; ``pytest tests/reliability/test_multi_region_invariants.py -k
seed_<n>`` runs that seed alone. Regions run in parallel, so a seed replays the same schedule
but not always the same interleaving. Messages go as signals: the time-skipping server has no
updates, and the signals run the same handlers.
"""

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowHistory

from models.deployment import DeploymentStatus, Phase, State
from models.multi_region import MultiRegionRequest, MultiRegionStatus
from tests.reliability.chaos_aws import ChaosAws, ChaosRun, Message, RegionChaos
from tests.reliability.chaos_runs import Deployments, Run, run_seeds_apart, selected_seeds
from tests.reliability.parent_log import PAST_BAKE, Entry, ParentLog
from tests.workflows.driving_regions import REGIONS, RegionsHandle, regions_outcome
from workflows.multi_region import MultiRegionDeployment

pytestmark = pytest.mark.timeout(240)
"""The module's fixture runs every seed, in batches (tests/reliability/chaos_runs.py), in the
time limit of its first test."""
RUNS = 120
"""Seeds 0 … RUNS-1; the module fails if fewer than MINIMUM_RUNS ran."""
MINIMUM_RUNS = 100
SERVERS = 6
"""Time-skipping servers of the module's own, running their share of the seeds at once."""
BATCH = 5
"""Deployments at once on one server, behind one worker."""
TROUBLE = 0.3
"""How likely a region's schedule keeps its own trouble (a failing step, never healthy, an
alarm); the others are calmed (``RegionChaos.calm``), so that whole runs succeed too."""

ELAPSED: dict[str, float] = {}
"""Wall time of the runs, for the summary line."""


class RegionsSchedule:
    """Everything random about one multi-region run, drawn from ``random.Random(seed)``: the
    regions and waves, the options, each region's chaos, and the messages."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.key = f"m{seed}"
        self.token = f"chaos-{self.key}-"
        regions = list(REGIONS[: rng.choice([2, 3])])
        layouts = [[regions]] + (
            [[regions[:1], regions[1:]], [regions[:2], regions[2:]], [[r] for r in regions]]
            if len(regions) == 3
            else [[[r] for r in regions]]
        )
        self.waves: list[list[str]] = layouts[0] if rng.random() < 0.5 else rng.choice(layouts[1:])
        self.fail_fast = rng.random() < 0.6
        self.switch_together = rng.random() < 0.35
        self.require_approval = rng.random() < 0.3
        self.switch_active_cluster = rng.random() > 0.05
        self.shutdown_inactive_cluster = rng.random() > 0.1
        self.chaos: dict[str, RegionChaos] = {}
        for index, region in enumerate(regions):
            region_rng = random.Random(rng.getrandbits(64))
            chaos = RegionChaos(region_rng, f"chaos-{self.key}r{index}-")
            chaos.seed_faults(region_rng)
            if rng.random() > TROUBLE:
                chaos.calm()
            elif rng.random() < 0.3:
                # Steps that put production back fail for good too: a person is needed.
                chaos.restore_fatal, chaos.fatal_rate = True, max(chaos.fatal_rate, 0.1)
            self.chaos[region] = chaos
        self._draw_messages(rng)

    def regions(self) -> list[str]:
        """Every region, wave by wave."""
        return [region for wave in self.waves for region in wave]

    def wave_of(self, region: str) -> int:
        """The index of the region's wave."""
        return next(index for index, wave in enumerate(self.waves) if region in wave)

    def _draw_messages(self, rng: random.Random) -> None:
        regions = self.regions()
        gate = self.require_approval and self.switch_active_cluster
        tested = [r for r in regions if self.chaos[r].with_checks]
        # The clock is held from a region's integration checks to its gate (ChaosWorld).
        if gate and tested and rng.random() < 0.8:
            at = self.chaos[rng.choice(tested)].messages
            roll = rng.random()
            if roll < 0.7:
                at.append(Message("approve", in_phase=Phase.AWAITING_APPROVAL, to_parent=True))
            elif roll < 0.85:
                at.append(Message("approve", in_phase=Phase.AWAITING_APPROVAL))
            else:
                at.append(Message("rollback", in_phase=Phase.AWAITING_APPROVAL, to_parent=True))
        wave = next((w for w in self.waves if len([r for r in w if r in tested]) > 1), None)
        if gate and self.switch_together and wave:
            # One region approved on its own child ID and baking; the rest of its wave, at the
            # gate a minute later, approved on the parent: they must switch then.
            alone, rest = rng.sample([r for r in wave if r in tested], 2)
            self.chaos[alone].messages.append(Message("approve", in_phase=Phase.AWAITING_APPROVAL))
            self.chaos[alone].bake_duration = max(
                self.chaos[alone].bake_duration, timedelta(minutes=2)
            )
            self.chaos[rest].messages.append(
                Message("approve", in_phase=Phase.AWAITING_APPROVAL, to_parent=True)
            )
            self.chaos[rest].healthy_after = max(self.chaos[rest].healthy_after or 0, 4)
        quiet_bakes = [
            r for r in regions if self.chaos[r].bake_duration and not self.chaos[r].alarm_names
        ]
        if quiet_bakes and rng.random() < 0.2:
            to_parent = rng.random() < 0.5
            message = Message("rollback", in_phase=Phase.BAKING, to_parent=to_parent)
            self.chaos[rng.choice(quiet_bakes)].messages.append(message)
        if rng.random() < 0.3:
            message = Message("rollback", at_call=rng.randint(0, 25), to_parent=True)
            self.chaos[rng.choice(regions)].messages.append(message)
        if rng.random() < 0.3:
            message = Message("rollback", at_call=rng.randint(0, 25))
            self.chaos[rng.choice(regions)].messages.append(message)
        if rng.random() < 0.1:
            # Nobody waits for it but at the gate: elsewhere it must be ignored harmlessly.
            message = Message("approve", at_call=rng.randint(0, 25), to_parent=True)
            self.chaos[rng.choice(regions)].messages.append(message)

    def request(self) -> MultiRegionRequest:
        """The deployment this run asks for: each region's resources named with its token."""
        return MultiRegionRequest(
            service="game",
            # An environment of its own: runs of a batch run at once, each holding its lease.
            environment=f"{self.token}prod",
            version="2",
            image="registry.example.com/game:2",
            waves=[[self.chaos[r].target(r) for r in wave] for wave in self.waves],
            switch_active_cluster=self.switch_active_cluster,
            shutdown_inactive_cluster=self.shutdown_inactive_cluster,
            require_approval=self.require_approval,
            switch_together=self.switch_together,
            fail_fast=self.fail_fast,
        )

    def kind(self) -> str:
        """The scenario kind, for the summary: e.g. "2 regions in waves, fail fast"."""
        layout = "one wave" if len(self.waves) == 1 else "waves"
        fail_fast = "fail fast" if self.fail_fast else "no fail fast"
        return f"{len(self.regions())} regions in {layout}, {fail_fast}"

    def describe(self) -> str:
        """What matters for reading a failure, a line per region."""
        return "\n  ".join(
            [
                f"waves={self.waves} fail_fast={self.fail_fast}"
                f" switch_together={self.switch_together} approval={self.require_approval}"
                f" switch={self.switch_active_cluster} shutdown={self.shutdown_inactive_cluster}",
                *(f"{r}: {self.chaos[r].describe()}" for r in self.regions()),
            ]
        )


@dataclass
class RegionsEnd:
    """How a multi-region run ended: the parent's final status, and its history."""

    status: MultiRegionStatus
    log: ParentLog


RegionsRun = Run[RegionsSchedule, RegionsEnd]


class SeveralRegions(Deployments[RegionsSchedule, RegionsEnd]):
    """A MultiRegionDeployment per seed, a world per region under the region's token."""

    def schedule(self, seed: int) -> RegionsSchedule:
        return RegionsSchedule(seed)

    async def start(
        self, client: Client, aws: ChaosAws, task_queue: str, schedule: RegionsSchedule
    ) -> ChaosRun:
        parent_id = f"regions-{schedule.token}{uuid.uuid4().hex[:8]}"
        run = aws.add_run(schedule.key, parent_id, fail_fast=schedule.fail_fast)
        request = schedule.request()
        for region in schedule.regions():
            chaos = schedule.chaos[region]
            aws.add_world(run, region, chaos, f"{parent_id}-{region}", request.version)
        handle = await client.start_workflow(
            MultiRegionDeployment.run, request, id=parent_id, task_queue=task_queue
        )
        run.run_id = handle.result_run_id
        return run

    async def end(self, client: Client, run: ChaosRun) -> RegionsEnd:
        handle = self._handle(client, run)
        status = await regions_outcome(handle)
        history: WorkflowHistory = await handle.fetch_history()
        converter = client.data_converter.payload_converter
        return RegionsEnd(status, ParentLog.of(history, list(run.worlds), converter))

    async def where(self, client: Client, run: ChaosRun) -> str:
        status = await self._handle(client, run).query(
            MultiRegionDeployment.status, rpc_timeout=timedelta(seconds=5)
        )
        regions = ", ".join(
            f"{r} {p.status.state.value} in {p.status.phase.value}" if p.status else f"{r} -"
            for r, p in status.regions.items()
        )
        return f"{status.state.value}: {regions}"

    @staticmethod
    def _handle(client: Client, run: ChaosRun) -> RegionsHandle:
        return client.get_workflow_handle_for(
            MultiRegionDeployment.run, run.workflow_id, run_id=run.run_id
        )


@pytest.fixture(scope="module")
async def runs(request: pytest.FixtureRequest) -> dict[int, RegionsRun]:
    """Every selected seed's run, in batches of BATCH on SERVERS servers."""
    started = time.monotonic()
    seeds = selected_seeds(request, RUNS)
    results = await run_seeds_apart(SeveralRegions(), seeds, servers=SERVERS, batch=BATCH)
    ELAPSED["runs"] = time.monotonic() - started
    return results


# --- what each region's end must be -----------------------------------------------------------


def problems_of(run: RegionsRun) -> list[str]:
    """Every rule the run broke (the module docstring lists them)."""
    problems = run.violations()
    end = run.end
    if end is None:
        return [*problems, f"no final status: {run.error}"]
    for rule in (
        regions_end_by_their_rules,
        parent_ends_as_its_regions,
        waves_start_when_due,
        rollbacks_reach_running_regions,
        rollbacks_taken_or_refused,
        gates_released,
    ):
        problems += rule(run, end)
    return problems


def regions_end_by_their_rules(run: RegionsRun, end: RegionsEnd) -> list[str]:
    """Each region that ran ends by (c) or as a success; one that never started is untouched."""
    schedule, problems = run.schedule, []
    for region in schedule.regions():
        world, progress = run.chaos.worlds[region], end.status.regions[region]
        started = end.log.started(region) is not None
        if progress.started != started:
            problems.append(f"{region}: the parent says started={progress.started}")
        if not started:
            if world.trace or world.snapshot() != world.before:
                problems.append(f"{region}: never started, yet its AWS was touched: {world.trace}")
            continue
        final = progress.status
        if final is None or final.state == State.RUNNING or final.phase != Phase.DONE:
            where = f"{final.state.value} in {final.phase.value}" if final else "no status"
            problems.append(f"{region}: the parent ended with the region {where}")
            continue
        problems += [
            f"{region}: {problem}"
            for problem in world.end_state_problems(
                final, schedule.switch_active_cluster, schedule.shutdown_inactive_cluster
            )
        ]
    return problems


def _finals(run: RegionsRun, end: RegionsEnd) -> dict[str, DeploymentStatus]:
    """The final status of every region that ran."""
    finals = {}
    for region in run.schedule.regions():
        final = end.status.regions[region].status
        if end.log.started(region) is not None and final is not None:
            finals[region] = final
    return finals


def parent_ends_as_its_regions(run: RegionsRun, end: RegionsEnd) -> list[str]:
    """Succeeded when every region did; rolled back when its rollback was accepted; failed
    otherwise, naming the regions left on the new version; the first failure as its reason."""
    status, problems = end.status, []
    finals = _finals(run, end)
    regions = run.schedule.regions()
    every = len(finals) == len(regions)
    all_succeeded = every and all(f.state == State.SUCCEEDED for f in finals.values())
    if status.rollback is not None:
        expected = State.ROLLED_BACK
    else:
        expected = State.SUCCEEDED if all_succeeded else State.FAILED
    if status.state != expected:
        problems.append(f"the parent ended {status.state.value}, expected {expected.value}")
    kept = [r for r in regions if r in finals and finals[r].state == State.SUCCEEDED]
    warning = f"these regions run the new version: {', '.join(kept)}"
    if expected != State.SUCCEEDED and kept and warning not in status.warnings:
        problems.append(f"the parent's warnings {status.warnings} lack {warning!r}")
    failures = end.log.failures()
    if status.rollback is None and failures:
        first = {e.region for e in failures if e.task == failures[0].task}
        if not any((status.reason or "").startswith(f"{r}: ") for r in first):
            problems.append(f"the parent's reason {status.reason!r} names none of {first}")
    return problems


def _stops(run: RegionsRun, end: RegionsEnd) -> list[Entry]:
    """What stops the waves, in the order the parent saw it: its accepted rollback, a region
    that ended without succeeding."""
    stops = end.log.failures()
    messages = end.log.rollback_messages()
    if end.status.rollback is not None and messages:
        stops.append(messages[0])  # the first is the one accepted; later ones are refused
    return sorted(stops, key=lambda e: e.id)


def waves_start_when_due(run: RegionsRun, end: RegionsEnd) -> list[str]:
    """A wave starts in the workflow task in which the parent learns that every region of the
    one before has passed its bake, unless it had stopped by then (a failure, fail fast or not,
    or its rollback); a region's child starts after the previous wave's bakes on the clock too."""
    problems, log, waves = [], end.log, run.schedule.waves
    stops = _stops(run, end)
    finals = _finals(run, end)
    for index in range(1, len(waves)):
        due = log.first_task_past_bake(waves[index - 1])
        stopped = any(stop.task <= due for stop in stops) if due is not None else True
        for region in waves[index]:
            started = log.started(region)
            if (started is not None) == stopped:
                why = "no region failed or was rolled back" if not stopped else "it had stopped"
                if due is None:
                    why = "the wave before never passed its bake"
                problems.append(
                    f"{region} (wave {index + 1}) {'started' if started else 'never started'},"
                    f" yet {why} (due in task {due}, stops {[(s.region, s.task) for s in stops]})"
                )
            if started is not None and due is not None and started.task != due:
                problems.append(
                    f"{region} started in task {started.task}, its wave was due in {due}"
                )
            if region in finals:
                start = _entered(finals[region], Phase.SETTING_UP)
                for before in waves[index - 1]:
                    passed = _passed_bake(finals.get(before))
                    if passed is None or (start is not None and passed > start):
                        problems.append(
                            f"{region} set up at {start}, before {before} passed its bake ({passed})"
                        )
    return problems


def _entered(status: DeploymentStatus, phase: Phase) -> datetime | None:
    return next((e.entered_at for e in status.phases if e.phase == phase), None)


def _passed_bake(status: DeploymentStatus | None) -> datetime | None:
    """When a region passed its bake: entered draining or cleaning up, or succeeded."""
    if status is None:
        return None
    past = [e.entered_at for e in status.phases if e.phase in PAST_BAKE]
    if past:
        return past[0]
    return _entered(status, Phase.DONE) if status.state == State.SUCCEEDED else None


def rollbacks_reach_running_regions(run: RegionsRun, end: RegionsEnd) -> list[str]:
    """The parent's accepted rollback goes to every region running then; with fail fast so does
    the first failure (the parent's own rollback, "<region> failed (fail fast)"), unless the
    parent was already rolling back; without fail fast the parent rolls nothing back itself."""
    problems, log = [], end.log
    parent_id = run.chaos.workflow_id
    fail_fast = run.schedule.fail_fast
    stops = _stops(run, end)

    def said(stop: Entry) -> tuple[str, str] | None:
        """What the parent's rollback says when ``stop`` makes the parent send one."""
        if stop.kind == "message":
            assert stop.rollback is not None
            return stop.rollback.by, stop.rollback.reason
        return (parent_id, f"{stop.region} failed (fail fast)") if fail_fast else None

    rolling_back = False
    for stop in stops:
        expected = said(stop)
        if expected is None or (stop.kind == "ended" and rolling_back):
            continue
        rolling_back = True
        # Stops the parent saw in one task may have been taken in either order.
        alike = [said(other) for other in stops if other.task == stop.task]
        must, _ = log.running_before(stop.task)
        for region in sorted(must - {stop.region}):
            to_region = log.rollbacks_sent(region, stop)
            if not any(_says(e, alike) for e in to_region):
                problems.append(
                    f"{_why(stop)} (event {stop.id}, task {stop.task}) did not reach {region},"
                    f" running then; sent: {[(e.id, _said(e)) for e in to_region]}"
                )
    for sent in log.all_rollbacks_sent():
        if "(fail fast)" in _said(sent) and not fail_fast:
            problems.append(
                f"without fail fast the parent rolled back {sent.region}: {_said(sent)}"
            )
    return problems


def _why(stop: Entry) -> str:
    return "the parent's rollback" if stop.kind == "message" else f"{stop.region}'s failure"


def _says(sent: Entry, alike: list[tuple[str, str] | None]) -> bool:
    """Whether the parent's rollback ``sent`` says one of ``alike`` (by, start of the reason)."""
    said = sent.rollback
    return said is not None and any(
        expected is not None and said.by == expected[0] and said.reason.startswith(expected[1])
        for expected in alike
    )


def _said(sent: Entry) -> str:
    return f"{sent.rollback.by}: {sent.rollback.reason}" if sent.rollback else "?"


def rollbacks_taken_or_refused(run: RegionsRun, end: RegionsEnd) -> list[str]:
    """A region the parent sent a rollback took it (and rolled back by its phase's rule: (c)),
    refused it for a reason the rules give, or had ended before it arrived."""
    problems, finals = [], _finals(run, end)
    for sent in end.log.all_rollbacks_sent():
        region, said = sent.region or "", sent.rollback
        final = finals.get(region)
        if final is None or said is None or final.rollback is not None:
            continue  # taken (this one or an earlier one): (c) judges how it ended
        if any(w.startswith(f"{region}: rollback not delivered") for w in end.status.warnings):
            continue  # the region's workflow had ended
        refusals = [w for w in final.warnings if w.startswith(f"ignored rollback from {said.by}")]
        if not refusals:
            problems.append(f"{region} neither took nor refused the rollback {_said(sent)}")
        elif "being shut down" in refusals[0]:
            if _entered(final, Phase.CLEANING_UP) is None:
                problems.append(f"{region} refused as shutting down, never cleaning up: {refusals}")
        elif "already ending" not in refusals[0]:
            problems.append(f"{region} refused the rollback: {refusals[0]}")
    return problems


def gates_released(run: RegionsRun, end: RegionsEnd) -> list[str]:
    """A region waits at its gate until the parent releases it: at once once it is ready (the
    approval given on the parent, with ``--require-approval``; with switch-together, every
    region of its wave at the gate, through it or ended), and not before. So it times out there
    only if it never was ready in time. One approved on its own child ID was sent that
    approval."""
    problems, schedule = [], run.schedule
    parent_id = run.chaos.workflow_id
    finals = _finals(run, end)
    for region, final in finals.items():
        if _entered(final, Phase.AWAITING_APPROVAL) is None or final.rollback is not None:
            continue  # never at the gate, or rolled back (the parent releases nobody then)
        ready = _ready_at(run, end, region, finals)
        given, until = final.approval, final.awaiting_approval_until
        timed_out = (final.report is not None and final.report.error_type == "ApprovalTimeout") or (
            given is not None and given.by == "timeout"
        )
        if timed_out and ready is not None and until is not None and ready < until:
            problems.append(f"{region} timed out at its gate at {until}, ready since {ready}")
        if given is None or given.by == "timeout":
            continue
        if given.by == parent_id or given.comment.endswith(f"(via {parent_id})"):
            if given.by == parent_id and not (
                schedule.switch_together and not schedule.require_approval
            ):
                problems.append(f"{region} released by the parent without switch-together")
            if ready is None or given.at - ready > RELEASE_LAG:
                problems.append(f"{region} released at {given.at}, ready since {ready}")
        elif not any(n.startswith("sent approve in") for n in run.chaos.worlds[region].notes):
            problems.append(f"{region} was approved ({given}) but not via the parent")
    return problems


RELEASE_LAG = timedelta(seconds=10)
"""How late (on the server's clock) a release may follow the moment a region was ready: the
parent releases it in the workflow task that learns it, but while a message holds the clock that
clock runs in real time."""


def _ready_at(
    run: RegionsRun, end: RegionsEnd, region: str, finals: dict[str, DeploymentStatus]
) -> datetime | None:
    """When the parent had what it needs to release ``region``: the approval, if required; with
    switch-together, every region of its wave at the gate (or ended before reaching it)."""
    schedule, moments = run.schedule, []
    if schedule.require_approval:
        if end.status.approval is None:
            return None
        moments.append(end.status.approval.at)
    wave = schedule.waves[schedule.wave_of(region)] if schedule.switch_together else [region]
    for member in wave:
        final = finals.get(member)
        arrived = final and (
            _entered(final, Phase.AWAITING_APPROVAL) or _entered(final, Phase.DONE)
        )
        if not arrived:
            return None
        moments.append(arrived)
    return max(moments)


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(RUNS), ids=lambda seed: f"seed_{seed}")
async def test_invariants_hold_in_every_region(seed: int, runs: dict[int, RegionsRun]) -> None:
    """(a) and (b) after every activity in each region; each region's end, the waves, fail fast,
    the rollbacks and the gates by the rules of docs/regions.md."""
    run = runs[seed]
    problems = problems_of(run)
    status = run.end.status if run.end else None
    assert not problems, (
        f"seed {seed} (rerun: pytest tests/reliability/test_multi_region_invariants.py"
        f" -k seed_{seed}):\n  "
        + "\n  ".join(problems)
        + f"\nschedule: {run.schedule.describe()}"
        + f"\nended: {status.state.value if status else run.error}"
        + (f" ({status.reason})" if status and status.reason else "")
        + "".join(
            f"\n{r}: {p.status.state.value} in {p.status.report.phase.value}: {p.status.report.reason}"
            for r, p in (status.regions.items() if status else [])
            if p.status and p.status.report
        )
        + f"\nmessages: {run.chaos.all_notes()}"
        + "".join(f"\ncalls {r}: {' | '.join(w.trace)}" for r, w in run.chaos.worlds.items())
    )


def summary(results: dict[int, RegionsRun]) -> str:
    """E.g. "120 runs: 40 succeeded, 45 failed, 35 rolled_back; by kind: …; regions: …"."""
    ends = Counter(run.end.status.state.value if run.end else "error" for run in results.values())
    kinds: dict[str, Counter[str]] = {}
    regions: Counter[str] = Counter()
    for run in results.values():
        state = run.end.status.state.value if run.end else "error"
        kinds.setdefault(run.schedule.kind(), Counter())[state] += 1
        for region in run.schedule.regions():
            progress = run.end.status.regions[region] if run.end else None
            final = progress.status if progress and progress.started else None
            regions[final.state.value if final else "not started"] += 1
    by_kind = "; ".join(
        f"{kind}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        for kind, counts in sorted(kinds.items())
    )
    return (
        f"{len(results)} runs: "
        + ", ".join(f"{count} {end}" for end, count in sorted(ends.items()))
        + f"; regions: {dict(sorted(regions.items()))}; by kind: {by_kind}"
    )


def reached(results: dict[int, RegionsRun]) -> dict[str, int]:
    """How often the runs reached what the rules are about."""
    ended = [run.end for run in results.values() if run.end]
    sent = [s for e in ended for s in e.log.all_rollbacks_sent()]
    finals = [f for run in results.values() if run.end for f in _finals(run, run.end).values()]
    notes = [n for run in results.values() for n in run.chaos.all_notes()]
    parent_ids = {run.chaos.workflow_id for run in results.values()}
    return {
        "fail-fast rollbacks sent": sum("(fail fast)" in _said(s) for s in sent),
        "parent rollbacks passed on": sum("(fail fast)" not in _said(s) for s in sent),
        "regions of a later wave left out": sum(
            not p.started for e in ended for p in e.status.regions.values()
        ),
        "rollbacks sent to a region": sum(
            n.startswith("sent rollback ") and "to the parent" not in n for n in notes
        ),
        "switch-together releases": sum(
            f.approval is not None and f.approval.by in parent_ids for f in finals
        ),
        "approvals on a region's own child": sum(n.startswith("sent approve in") for n in notes),
        "restores left to a person": sum(
            bool(f.report and f.report.compensation_errors) for f in finals
        ),
    }


async def test_at_least_100_randomized_runs_reach_every_rule(
    runs: dict[int, RegionsRun], capsys: pytest.CaptureFixture[str]
) -> None:
    """The rules above mean something only if the schedules reach them: every ending, fail fast
    rolling regions back, later waves left out, rollbacks on the parent and on a region, the
    gate released either way; prints how many ran and how they ended."""
    with capsys.disabled():
        print(f"\nmulti-region invariants: {summary(runs)} in {ELAPSED.get('runs', 0):.1f} s")
        print(f"reached: {reached(runs)}")
    assert len(runs) >= MINIMUM_RUNS, f"only {len(runs)} runs: {summary(runs)}"
    ended = {run.end.status.state for run in runs.values() if run.end}
    assert {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK} <= ended, summary(runs)
    counts = reached(runs)
    assert all(count >= 2 for count in counts.values()), counts
