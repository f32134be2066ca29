"""What a load run saw: the result (JSON), the tally that builds it, the lines that sum it up."""

import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Requests(BaseModel):
    """The plain HTTP requests (``GET /version``). ``sent`` = answered by color + ``failed``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    sent: int = 0
    failed: int = 0
    """A status other than 2xx, a transport error, no answer within the timeout."""
    by_color: dict[str, int] = Field(default_factory=dict)
    """The 2xx answers by the ``color`` in their JSON body (``unknown`` without one)."""
    failure_reasons: dict[str, int] = Field(default_factory=dict)
    """``HTTP 500``, ``timeout``, ``connection refused``, …"""


class Sessions(BaseModel):
    """The players' WebSocket sessions."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    opened: int = 0
    """Sessions that got their welcome, reconnections included."""
    cut: int = 0
    """Sessions ended by anything but the player's own clean close after a finished game."""
    cut_reasons: dict[str, int] = Field(default_factory=dict)
    """``server closed 1001 (going away)``, ``abnormal closure``, ``no ack within 5s``, …"""
    cut_on: dict[str, int] = Field(default_factory=dict)
    """Color → sessions cut while on it (its welcome named it)."""
    reconnected: int = 0
    """Sessions opened by a player who had one before (told to reconnect, or cut)."""
    landed: dict[str, int] = Field(default_factory=dict)
    """The colors those reconnections landed on, from their welcome."""
    left: int = 0
    """Players gone for good after a reconnect notice (``--on-notice leave``)."""
    games: int = 0
    """Games played to their end."""
    failed_connects: int = 0
    """Attempts to open a session that failed (each retried after a short backoff)."""
    connect_failure_reasons: dict[str, int] = Field(default_factory=dict)


class Second(BaseModel):
    """The HTTP answers of one second of the run."""

    second: int
    """Whole seconds from the start."""
    ok: dict[str, int] = Field(default_factory=dict)
    """2xx answers by color."""
    failed: int = 0


class LoadResult(BaseModel):
    """Everything a run saw, written as JSON by ``--result``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    requests: Requests = Field(default_factory=Requests)
    sessions: Sessions = Field(default_factory=Sessions)
    started_at: float
    """Epoch seconds."""
    ended_at: float
    timeline: list[Second] = Field(default_factory=list)
    """One entry per second from the first answer's to the last one's, empty seconds included:
    where failures started, when the answers moved to another color."""

    @classmethod
    def read(cls, path: Path) -> "LoadResult":
        return cls.model_validate_json(path.read_text())

    def write(self, path: Path) -> None:
        """Whole or not at all: a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.model_dump_json(indent=2) + "\n")
        partial.replace(path)


class Tally:
    """Counts as things happen (one event loop: no locking); ``result()`` at the end."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began = clock()
        self._result = LoadResult(started_at=time.time(), ended_at=0)
        self._ok: dict[int, Counter[str]] = {}
        self._failed: Counter[int] = Counter()

    def answered(self, color: str) -> None:
        self._result.requests.sent += 1
        _add(self._result.requests.by_color, color)
        self._ok.setdefault(self._second(), Counter())[color] += 1

    def request_failed(self, reason: str) -> None:
        self._result.requests.sent += 1
        self._result.requests.failed += 1
        _add(self._result.requests.failure_reasons, reason)
        self._failed[self._second()] += 1

    def opened(self, color: str, *, again: bool) -> None:
        """A session got its welcome from ``color``; ``again`` when the player had one
        before."""
        sessions = self._result.sessions
        sessions.opened += 1
        if again:
            sessions.reconnected += 1
            _add(sessions.landed, color)

    def cut(self, reason: str, color: str) -> None:
        self._result.sessions.cut += 1
        _add(self._result.sessions.cut_reasons, reason)
        _add(self._result.sessions.cut_on, color)

    def game_played(self) -> None:
        self._result.sessions.games += 1

    def left(self) -> None:
        self._result.sessions.left += 1

    def connect_failed(self, reason: str) -> None:
        self._result.sessions.failed_connects += 1
        _add(self._result.sessions.connect_failure_reasons, reason)

    def result(self) -> LoadResult:
        """What was counted so far, ended now."""
        seconds = set(self._ok) | set(self._failed)
        timeline = [
            Second(second=s, ok=dict(self._ok.get(s, {})), failed=self._failed[s])
            for s in (range(min(seconds), max(seconds) + 1) if seconds else ())
        ]
        return self._result.model_copy(
            update={"ended_at": time.time(), "timeline": timeline}, deep=True
        )

    def _second(self) -> int:
        return int(self._clock() - self._began)


def _add(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def summary_line(result: LoadResult) -> str:
    """The one line ``python -m local.load`` prints at the end."""
    requests, sessions = result.requests, result.sessions
    return (
        f"load: {requests.sent} requests, {requests.failed} failed{_by(requests.by_color)};"
        f" {sessions.opened} sessions, {sessions.cut} cut mid-game{_by(sessions.cut_reasons)},"
        f" {sessions.reconnected} reconnected{_by(sessions.landed)}, {sessions.left} left,"
        f" {sessions.games} games, {sessions.failed_connects} failed connects"
        f" in {result.ended_at - result.started_at:.1f}s"
    )


def _by(counts: Mapping[str, int]) -> str:
    """`` (blue 3, green 2)``, or nothing for no counts."""
    return f" ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})" if counts else ""
