"""Players: WebSocket sessions that play games back to back, as the sample game service speaks
(its protocol is in sample_service's docstring).

A player connects to ``/play``, reads its welcome and plays: a game is a move every
``move_interval`` for ``game_seconds``, each move answered by an ack. Told to reconnect, it
finishes the game, closes cleanly (1000) and reconnects at once (or leaves, ``on_notice``).
Any other end of a session is a cut: a close by the server, a dropped connection, a move not
acked within ACK_TIMEOUT; the player counts it and reconnects. At the stop, each player
finishes its game and closes cleanly. A player's first game is shorter by a random part, as
players who joined at different times: games that all end together would make every player
reconnect in the same instant.
"""

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode

from local.load.http_load import failure_reason, wait_or_stop
from local.load.result import Tally
from local.load.settings import LoadSettings

ACK_TIMEOUT = 5.0
"""Seconds a move (or the welcome) may wait for its answer before the session counts as cut."""
OPEN_TIMEOUT = 5.0
CLOSE_TIMEOUT = 2.0
FIRST_BACKOFF, MAX_BACKOFF = 0.25, 2.0
"""Seconds before retrying a failed connect: doubling from the first to the most."""
NO_ACK = 4000
"""The close code a player sends when the server stops answering (a private-use code)."""


class Cut(Exception):
    """The session ended other than by the player's clean close; the message says how."""


class ConnectFailed(Exception):
    """No session: refused, no handshake, or no welcome; the message says how."""


class Player:
    """One player, for the whole run: sessions one after another."""

    def __init__(
        self,
        settings: LoadSettings,
        tally: Tally,
        stopping: asyncio.Event,
        welcomed: Callable[[], object],
    ) -> None:
        self.settings = settings
        self.tally = tally
        self.stopping = stopping
        self._welcomed = welcomed
        self._sessions = 0
        self._color = "unknown"
        """The color of the session now, as its welcome said."""
        self._next_game_seconds = random.uniform(0.1, 1) * settings.game_seconds
        self._headers = {"X-Game-Version": settings.version} if settings.version else {}

    async def run(self) -> None:
        """Play until the stop (or, with ``on_notice`` leave, until told to reconnect)."""
        backoff = FIRST_BACKOFF
        while not self.stopping.is_set():
            try:
                websocket = await self._open()
            except ConnectFailed as failed:
                self.tally.connect_failed(str(failed))
                await wait_or_stop(self.stopping, backoff)
                backoff = min(2 * backoff, MAX_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            try:
                told = await self._play(websocket)
            except Cut as cut:
                self.tally.cut(str(cut), self._color)
                continue
            finally:
                await websocket.close()
            if told and self.settings.on_notice == "leave":
                self.tally.left()
                return

    async def _open(self) -> ClientConnection:
        """A session that got its welcome (counted as opened); ConnectFailed otherwise."""
        try:
            websocket = await connect(
                self.settings.play_url,
                additional_headers=self._headers,
                open_timeout=OPEN_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
            )
        except (OSError, TimeoutError, InvalidHandshake) as err:
            raise ConnectFailed(_connect_failure(err)) from err
        try:
            welcome = await self._receive(websocket, "welcome")
        except (Cut, ConnectionClosed) as err:
            await websocket.close()
            how = _closed_how(err) if isinstance(err, ConnectionClosed) else str(err)
            raise ConnectFailed(how) from err
        self._color = str(welcome.get("color"))
        self.tally.opened(self._color, again=self._sessions > 0)
        self._sessions += 1
        if self._sessions == 1:
            self._welcomed()
        return websocket

    async def _play(self, websocket: ClientConnection) -> bool:
        """Games until told to reconnect or the stop, then a clean close: whether it was
        told."""
        try:
            told, game = False, 0
            while not (told or self.stopping.is_set()):
                game += 1
                told = await self._game(websocket, game)
                self.tally.game_played()
            await websocket.close(CloseCode.NORMAL_CLOSURE)
            return told
        except ConnectionClosed as closed:
            raise Cut(_closed_how(closed)) from closed

    async def _game(self, websocket: ClientConnection, game: int) -> bool:
        """One game to its end; whether a reconnect notice came meanwhile."""
        loop = asyncio.get_running_loop()
        seconds, self._next_game_seconds = self._next_game_seconds, self.settings.game_seconds
        ends = loop.time() + seconds
        told = False
        while True:
            await websocket.send(json.dumps({"type": "move", "game": game}))
            told |= await self._ack(websocket, game)
            left = ends - loop.time()
            if left <= 0:
                return told
            await asyncio.sleep(min(self.settings.move_interval, left))

    async def _ack(self, websocket: ClientConnection, game: int) -> bool:
        """Wait for the move's ack; whether a reconnect notice came first."""
        told = False
        while True:
            message = await self._receive(websocket, "ack", "reconnect")
            if message["type"] == "reconnect":
                told = True
            elif message.get("game") == game:
                return told

    async def _receive(self, websocket: ClientConnection, *types: str) -> dict[str, Any]:
        """The next frame of one of ``types`` (others are skipped), within ACK_TIMEOUT."""
        try:
            async with asyncio.timeout(ACK_TIMEOUT):
                while True:
                    try:
                        message = json.loads(await websocket.recv())
                    except ValueError:
                        continue
                    if isinstance(message, dict) and message.get("type") in types:
                        return message
        except TimeoutError:
            await websocket.close(NO_ACK, "no answer")
            raise Cut(f"no {types[0]} within {ACK_TIMEOUT:g}s") from None


def _closed_how(closed: ConnectionClosed) -> str:
    """``server closed 1001 (going away)``, ``abnormal closure`` (no close frame), …"""
    if closed.rcvd is None:
        return "abnormal closure (no close frame)"
    code = closed.rcvd.code
    try:
        name = CloseCode(code).name.lower().replace("_", " ")
    except ValueError:
        name = "other"
    return f"server closed {code} ({name})"


def _connect_failure(err: BaseException) -> str:
    if isinstance(err, InvalidStatus):
        return f"HTTP {err.response.status_code}"
    if isinstance(err, InvalidHandshake):
        return f"handshake: {err}"
    return failure_reason(err)
