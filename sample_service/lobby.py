"""The players connected to one game server: who is there, on which client version, who leaves.

No I/O and no threads: a player told to reconnect gets a time at which their current game ends,
and is gone from every count after that time. Checking the clock on each access is all the
"background timer" the server needs, and it makes the lobby easy to test with a fake clock.
"""

import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_GAME_SECONDS = 0.5
"""The shortest rest of a game a notified player still finishes before leaving."""


@dataclass
class Player:
    """One connected client."""

    player_id: str
    version: str
    leaves_at: float | None = None
    """When their current game is over, once told to reconnect; None until then."""


class Lobby:
    """Thread-safe: the HTTP server handles each request in its own thread."""

    def __init__(
        self,
        game_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if game_seconds <= 0:
            raise ValueError("game_seconds must be greater than zero")
        self._game_seconds = game_seconds
        self._clock = clock
        self._rng = rng or random.Random()
        self._players: dict[str, Player] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def join(self, version: str) -> str:
        """A player connects with client ``version``; their ID."""
        with self._lock:
            player_id = f"p{next(self._ids)}"
            self._players[player_id] = Player(player_id, version)
            return player_id

    def leave(self, player_id: str) -> bool:
        """A player disconnects; False when no such player is connected."""
        with self._lock:
            self._expire()
            return self._players.pop(player_id, None) is not None

    def count(self, version: str | None = None) -> int:
        """Players connected on ``version``, or all of them when ``version`` is None."""
        with self._lock:
            self._expire()
            return sum(1 for p in self._players.values() if version in (None, p.version))

    def notify_reconnect(self, version: str) -> int:
        """Tell every player on ``version`` to reconnect once their current game is done.

        Each leaves after the rest of their game: a random MIN_GAME_SECONDS..game_seconds from
        the first notification. Notifying again changes nothing for players already told.
        Returns how many players on ``version`` are now on their way out.
        """
        with self._lock:
            self._expire()
            now = self._clock()
            shortest = min(MIN_GAME_SECONDS, self._game_seconds)
            told = [p for p in self._players.values() if p.version == version]
            for player in told:
                if player.leaves_at is None:
                    player.leaves_at = now + self._rng.uniform(shortest, self._game_seconds)
            return len(told)

    def _expire(self) -> None:
        # Callers hold the lock.
        now = self._clock()
        gone = [
            i for i, p in self._players.items() if p.leaves_at is not None and p.leaves_at <= now
        ]
        for player_id in gone:
            del self._players[player_id]
