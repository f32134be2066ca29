"""What the benchmarks share: medians, minima and maxima, tables, JSON, the command line and
running one as a command; and measuring the local environment: its processes' CPU and memory,
the workflows' histories (children included), the deployment's settings.
"""

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from local.stack import interrupt_on_sigterm
from models.config import BakeConfig, EnvironmentConfig

ResultsT = TypeVar("ResultsT")
SetupT = TypeVar("SetupT")
SampleT = TypeVar("SampleT")


@dataclass
class Sampled(Generic[SetupT, SampleT]):
    """A benchmark's results: what it was measured with, the warm-ups (reported, not counted)
    and the samples of every round."""

    setup: SetupT
    warmup: list[SampleT] = field(default_factory=list)
    samples: list[SampleT] = field(default_factory=list)


def stats(values: Sequence[float]) -> dict[str, float]:
    """median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def rounded(value: Any) -> Any:
    """``value`` with every float in it rounded to 6 decimals, dataclasses as dicts."""
    if isinstance(value, float):
        return round(value, 6)
    if is_dataclass(value) and not isinstance(value, type):
        return rounded(asdict(value))
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def json_text(document: Any) -> str:
    """``document`` as one indented JSON document, ``rounded``."""
    return json.dumps(rounded(document), indent=2)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Right-aligned columns under their headers."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
        for row in [headers, *rows]
    ]


def with_stats(
    samples: Sequence[Sequence[str]], columns: Sequence[Sequence[float] | None]
) -> list[list[str]]:
    """``samples`` followed by median, min and max rows of the numeric ``columns``."""
    rows = [list(s) for s in samples]
    for name, pick in (("median", statistics.median), ("min", min), ("max", max)):
        rows.append([name] + [f"{pick(c):.3f}" if c is not None else "" for c in columns[1:]])
    return rows


def labelled_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """``table`` with the first column's labels to the left (padded to one width: right-aligning
    them changes nothing), every line indented by two spaces."""
    width = max(len(row[0]) for row in rows)
    padded = [[row[0].ljust(width), *row[1:]] for row in rows]
    return ["  " + line for line in table(headers, padded)]


def server_text(server_config: Mapping[str, Any]) -> str:
    """The dev server's dynamic config as the reports name it."""
    return ", ".join(f"{k}={v}" for k, v in server_config.items()) or "its defaults"


def environment_line(
    name: str, rounds: int, server_config: Mapping[str, Any], cpus: int | None
) -> str:
    """A report's first line: the benchmark, its rounds, the dev server's settings, the CPUs."""
    return (
        f"{name} benchmark: {rounds} rounds on the local environment (Temporal dev server"
        f" with {server_text(server_config)}, moto, one worker; {cpus} CPUs shared by all of them)"
    )


def arguments(
    prog: str, description: str, rounds: int, rounds_help: str = "default: %(default)s"
) -> argparse.ArgumentParser:
    """A benchmark's parser with ``--rounds`` (default ``rounds``) and ``--json``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return parser


def add_server_config(parser: argparse.ArgumentParser) -> None:
    """``--server-config KEY=VALUE`` (repeatable): the dev server's dynamic config."""
    parser.add_argument(
        "--server-config",
        type=server_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dynamic config for the Temporal dev server (repeatable)",
    )


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``argv`` parsed; ``--rounds`` at least 1; ``server_config`` (if any) as a dict."""
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if "server_config" in args:
        args.server_config = dict(args.server_config)
    return args


def run_benchmark(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Callable[[str], None]], ResultsT],
    as_json: Callable[[ResultsT], str],
    report: Callable[[ResultsT], str],
) -> int:
    """Run one benchmark as a command: progress on stderr, its figures (or JSON) on stdout.

    0 when every deployment did what it should; 1 when one did not; 130 when interrupted.
    """
    interrupt_on_sigterm()

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    try:
        results = run(args, say)
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    except (RuntimeError, TimeoutError, OSError) as err:
        say(f"FAILED: {err}")
        return 1
    print(as_json(results) if args.json else report(results), flush=True)
    return 0


def server_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (KEY, VALUE as JSON where it parses, else the string)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def with_bake(env: EnvironmentConfig, seconds: float) -> EnvironmentConfig:
    """``env`` with a bake of ``seconds`` watching its alarms; none at all (nor alarms) for 0."""
    bake = (
        env.bake.model_copy(update={"duration": timedelta(seconds=seconds)})
        if seconds
        else BakeConfig(duration=timedelta(0))
    )
    return env.model_copy(update={"bake": bake})


def deployment_setup(env: EnvironmentConfig, server_config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings every deployment benchmark reports: this machine's CPUs, the health and
    drain polls, the integration checks, the dev server's dynamic config."""
    return {
        "cpus": os.cpu_count(),
        "health_poll": env.health.poll_interval.total_seconds(),
        "drain_poll": env.drain.poll_interval.total_seconds(),
        "integration_checks": [check.url for check in env.integration_checks],
        "server_config": dict(server_config),
    }


class CpuMeter:
    """CPU seconds used so far by the worker, the dev server and moto (and their children).

    Read from /proc: on systems without it, ``read`` returns nothing and the report says so.
    """

    NAMES: ClassVar[dict[str, str]] = {
        "worker.py": "worker",
        "start-dev": "Temporal",
        "moto_server": "moto",
    }
    """A word of the process's command line → the name it is reported under."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        """Find this process's children named in ``names`` (default: ``NAMES``)."""
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        children = self._children()
        self._roots: dict[str, int] = {}
        for pid in children.get(os.getpid(), []):
            words = self._cmdline(pid)
            for word, name in (self.NAMES if names is None else names).items():
                if any(word in w for w in words):
                    self._roots[name] = pid

    def read(self) -> dict[str, float]:
        """Process name → CPU seconds (user + system) of it and its descendants."""
        children = self._children()
        used: dict[str, float] = {}
        for name, root in self._roots.items():
            pids, total = [root], 0.0
            while pids:
                pid = pids.pop()
                pids += children.get(pid, [])
                total += self._cpu(pid)
            used[name] = total
        return used

    @staticmethod
    def _children() -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        proc = Path("/proc")
        if not proc.is_dir():
            return found
        for entry in proc.iterdir():
            if entry.name.isdigit():
                stat = CpuMeter._stat(int(entry.name))
                if stat:
                    found.setdefault(int(stat[1]), []).append(int(entry.name))
        return found

    @staticmethod
    def _stat(pid: int) -> list[str]:
        """The fields of /proc/PID/stat after the command name (state, ppid, …)."""
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return []

    @staticmethod
    def _cmdline(pid: int) -> list[str]:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            return []

    def _cpu(self, pid: int) -> float:
        stat = self._stat(pid)
        # utime and stime are the 14th and 15th fields of the whole line.
        return (int(stat[11]) + int(stat[12])) / self._tick if len(stat) > 12 else 0.0


def at(event: HistoryEvent) -> float:
    """When the server recorded ``event``, in seconds since the epoch."""
    return event.event_time.ToNanoseconds() / 1e9


class TaskTimes:
    """How long workflow tasks waited and ran, and activities ran, over several histories."""

    def __init__(self, histories: Iterable[Sequence[HistoryEvent]] = ()) -> None:
        """The times of every one of ``histories`` (``add``)."""
        self.task_waits: list[float] = []
        self.task_runs: list[float] = []
        self.activity_waits: list[float] = []
        self.activity_runs: list[float] = []
        for events in histories:
            self.add(events)

    def add(self, events: Sequence[HistoryEvent]) -> None:
        """Pair each started event with its scheduled one, each completed with its started."""
        when = {e.event_id: at(e) for e in events}
        # Event type → the attribute naming the earlier event, and the list the span goes to.
        spans = {
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: ("scheduled_event_id", self.task_waits),
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: ("started_event_id", self.task_runs),
            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: ("scheduled_event_id", self.activity_waits),
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: ("started_event_id", self.activity_runs),
        }
        for e in events:
            if e.event_type in spans:
                earlier, spent = spans[e.event_type]
                attributes = getattr(e, str(e.WhichOneof("attributes")))
                spent.append(at(e) - when[getattr(attributes, earlier)])


def started_children(events: Sequence[HistoryEvent]) -> list[tuple[str, str]]:
    """(workflow ID, run ID) of every child workflow ``events`` (one history) started."""
    found = []
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            child = e.child_workflow_execution_started_event_attributes.workflow_execution
            found.append((child.workflow_id, child.run_id))
    return found


async def histories(
    client: Client, workflow_id: str, run_id: str | None = None
) -> dict[str, list[HistoryEvent]]:
    """Workflow ID → its history, for the workflow and every child it started, and theirs.

    Each child's first run only: none of the benchmarks' children continues as new.
    """
    found: dict[str, list[HistoryEvent]] = {}
    pending: list[tuple[str, str | None]] = [(workflow_id, run_id)]
    while pending:
        wanted, run = pending.pop()
        events = list((await client.get_workflow_handle(wanted, run_id=run).fetch_history()).events)
        found[wanted] = events
        pending += started_children(events)
    return found


def descendants(
    recorded: Mapping[str, Sequence[HistoryEvent]], workflow_id: str
) -> dict[str, Sequence[HistoryEvent]]:
    """Of ``histories``'s answer ``recorded``: ``workflow_id``'s history and those of every
    child it started, and theirs."""
    found: dict[str, Sequence[HistoryEvent]] = {}
    pending = [workflow_id]
    while pending:
        wanted = pending.pop()
        found[wanted] = recorded[wanted]
        pending += [child for child, _ in started_children(recorded[wanted])]
    return found


def count_events(events: Sequence[HistoryEvent], event_type: "EventType.ValueType") -> int:
    """How many of ``events`` are of ``event_type``."""
    return sum(1 for e in events if e.event_type == event_type)


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now (``rss``) and at its peak so far (``peak``), in MB
    (2**20 bytes), from /proc/PID/status; empty where there is no /proc or no such process."""
    fields = {"VmRSS": "rss", "VmHWM": "peak"}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in fields:
            # Reported in kB (KiB) whatever the unit says.
            found[fields[key]] = int(value.split()[0]) / 1024
    return found


def machine_cpu() -> dict[str, float]:
    """CPU seconds this whole machine has spent since boot, summed over its CPUs: ``busy``
    (running anything, other people's jobs included) and ``all`` (busy and idle); empty without
    /proc. Two readings tell how much of the machine a run had: it is shared."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return {}
    # user nice system idle iowait irq softirq steal; guest time is already in user and nice.
    ticks = [int(v) for v in fields[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = sum(ticks[3:5])
    return {"busy": (sum(ticks) - idle) / tick, "all": sum(ticks) / tick}


def cpu_reading(meter: CpuMeter) -> dict[str, float]:
    """``meter.read()``, and the whole machine's ``machine_cpu`` as ``machine_busy`` and
    ``machine_all``: two readings give ``cpu_used``."""
    return {**meter.read(), **{f"machine_{k}": v for k, v in machine_cpu().items()}}


def cpu_measures(
    readings: Sequence[Mapping[str, float]], names: Iterable[str]
) -> dict[str, list[float]]:
    """``cpu_<name>`` → that process's CPU seconds in each of ``readings`` (``cpu_used``'s), for
    the ``names`` that every reading has."""
    return {
        f"cpu_{name}": [cpu[name] for cpu in readings]
        for name in names
        if all(name in cpu for cpu in readings)
    }


def cpu_used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds of each process between two ``cpu_reading``s, and of every other process on
    the machine as ``others``: what the run competed with."""
    used = {key: value - before.get(key, 0.0) for key, value in after.items()}
    busy = used.pop("machine_busy", None)
    used.pop("machine_all", None)
    if busy is not None:
        used["others"] = max(0.0, busy - sum(used.values()))
    return used
