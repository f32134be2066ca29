"""The open player sessions of one game server: their client versions and who was told to
reconnect. No I/O: the server sends the frames this decides on."""

import itertools
from dataclasses import dataclass


@dataclass
class Session:
    """One open WebSocket session."""

    session_id: str
    version: str
    """The client version it connected with."""
    told: bool = False
    """Whether it was sent the reconnect notice."""


class Sessions:
    """Open sessions by ID. Used from one asyncio event loop: no locking."""

    def __init__(self) -> None:
        self._open: dict[str, Session] = {}
        self._ids = itertools.count(1)

    def open(self, version: str) -> Session:
        """A new session on client ``version``, with a new ID (``s1``, ``s2``, …)."""
        session = Session(f"s{next(self._ids)}", version)
        self._open[session.session_id] = session
        return session

    def close(self, session: Session) -> None:
        """The session is gone; closing it twice is harmless."""
        self._open.pop(session.session_id, None)

    def count(self, version: str | None = None) -> int:
        """Open sessions on ``version``, or all of them when ``version`` is None."""
        return sum(1 for s in self._open.values() if version in (None, s.version))

    def tell(self, version: str) -> tuple[list[Session], int]:
        """Mark every open session on ``version`` as told to reconnect. Returns those newly
        told (who need the notice sent) and how many open sessions on ``version`` are told,
        now or before."""
        on_version = [s for s in self._open.values() if s.version == version]
        new = [s for s in on_version if not s.told]
        for session in new:
            session.told = True
        return new, len(on_version)
