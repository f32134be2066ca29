"""One game server of one color and version: the plain HTTP endpoints and the player sessions,
on one port (the endpoints and protocol are in the package's docstring)."""

import asyncio
import itertools
import json
import sys
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sample_service.behaviour import parse_behaviour
from sample_service.sessions import Session, Sessions

VERSION_HEADER = "X-Game-Version"
PLAY = "/play"
ENDPOINTS = {"/health": "GET", "/version": "GET", "/connections": "GET", "/reconnect": "POST"}
"""The plain HTTP endpoints and their one method; ``GET /play`` is the WebSocket upgrade."""
NOTICE = json.dumps({"type": "reconnect"})


class GameServer:
    """The state of one server: its color and version, its open sessions."""

    def __init__(self, color: str, version: str) -> None:
        self.color = color
        self.version = version
        self.behaviour = parse_behaviour(version)
        self.sessions = Sessions()
        self._connections: dict[str, ServerConnection] = {}
        self._version_requests = itertools.count(1)

    def listen(self, host: str, port: int) -> Server:
        """The listening server: ``async with game.listen(host, port) as server: ...``; leaving
        the block closes every open session with 1001 (going away)."""
        return serve(self.play, host, port, process_request=self.answer)

    async def answer(self, connection: ServerConnection, request: Request) -> Response | None:
        """A plain HTTP request's response; None lets a ``GET /play`` upgrade go on."""
        path = urlsplit(request.path).path
        if path == PLAY and request.method == "GET":
            return None
        expected = ENDPOINTS.get(path, "GET" if path == PLAY else None)
        if expected is None:
            return _json(connection, HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {path}"})
        if request.method != expected:
            return _json(
                connection,
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": f"{request.method} not allowed on {path}"},
            )
        version = request.headers.get(VERSION_HEADER)
        if path == "/health":
            if self.behaviour.unhealthy:
                text = f"unhealthy color={self.color} version={self.version}"
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, text)
            return connection.respond(
                HTTPStatus.OK, f"ok color={self.color} version={self.version}"
            )
        if path == "/version":
            if self.behaviour.fails(next(self._version_requests)):
                failure = {"error": f"a failure on purpose (version {self.version})"}
                return _json(connection, HTTPStatus.INTERNAL_SERVER_ERROR, failure)
            return _json(connection, HTTPStatus.OK, {"color": self.color, "version": self.version})
        if path == "/connections":
            return _json(connection, HTTPStatus.OK, {"connections": self.sessions.count(version)})
        notified = await self.tell(version or self.version)
        return _json(connection, HTTPStatus.ACCEPTED, {"notified": notified})

    async def tell(self, version: str) -> int:
        """Send the reconnect notice to the sessions on ``version`` not told yet; how many
        sessions on ``version`` have been told, now or before."""
        new, told = self.sessions.tell(version)
        if new:
            self.log(f"reconnect notice to {len(new)} session(s) on version {version}")
            # A session closing meanwhile raises ConnectionClosed: nobody left to tell.
            sends = (self._connections[s.session_id].send(NOTICE) for s in new)
            await asyncio.gather(*sends, return_exceptions=True)
        return told

    async def play(self, connection: ServerConnection) -> None:
        """One player's session: welcome, then an ack for each move, until either side
        closes."""
        assert connection.request is not None  # the handshake is done
        version = connection.request.headers.get(VERSION_HEADER) or self.version
        session = self.sessions.open(version)
        self._connections[session.session_id] = connection
        self.log(f"session {session.session_id} opened on version {version}")
        try:
            await connection.send(self._welcome(session))
            async for message in connection:
                await connection.send(_reply(message))
        except ConnectionClosed:
            pass  # closed without a clean close frame; the close code says how
        finally:
            self.sessions.close(session)
            del self._connections[session.session_id]
            code = connection.close_code
            self.log(f"session {session.session_id} closed (code {code or 'none'})")

    def log(self, line: str) -> None:
        """One line on stderr, tagged with color and version: both colors log to one terminal."""
        print(f"[{self.color} v{self.version}] {line}", file=sys.stderr, flush=True)

    def _welcome(self, session: Session) -> str:
        return json.dumps(
            {
                "type": "welcome",
                "color": self.color,
                "version": self.version,
                "session": session.session_id,
            }
        )


def _reply(message: str | bytes) -> str:
    """The answer to a player's frame: an ack for a move, an error for anything else."""
    try:
        data = json.loads(message)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("type") == "move" and isinstance(data.get("game"), int):
        return json.dumps({"type": "ack", "game": data["game"]})
    return json.dumps({"type": "error", "error": 'expected {"type": "move", "game": n}'})


def _json(connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
