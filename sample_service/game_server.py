"""The HTTP side of the sample game service: one server per color, players in a Lobby.

    GET    /health          200 "ok color=blue version=1"
    GET    /connections     200 {"connections": N}   players on X-Game-Version (all without it)
    POST   /players         201 {"player_id": "p1"}   a player joins on X-Game-Version
    DELETE /players/<id>    204                       a player leaves
    POST   /reconnect       202 {"notified": N}       players on X-Game-Version leave after
                                                      their current game

X-Game-Version defaults to the server's own version where a request needs one.
"""

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from sample_service.lobby import Lobby

VERSION_HEADER = "X-Game-Version"
PLAYERS = "/players"
ENDPOINTS = frozenset({"/health", "/connections", PLAYERS, "/reconnect"})


class GameServer(ThreadingHTTPServer):
    """A game server of one color and version, with its lobby of connected players."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], color: str, version: str, lobby: Lobby) -> None:
        super().__init__(address, GameRequestHandler)
        self.color = color
        self.version = version
        self.lobby = lobby

    @property
    def url(self) -> str:
        """Where clients reach this server, e.g. ``http://127.0.0.1:8081``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def make_server(
    port: int,
    color: str,
    version: str,
    *,
    players: int = 0,
    game_seconds: float = 30,
    host: str = "127.0.0.1",
) -> GameServer:
    """A bound server (``port`` 0 picks a free one) with ``players`` seeded on ``version``.

    >>> server = make_server(0, "blue", "1", players=4)
    >>> threading.Thread(target=server.serve_forever).start()  # server.shutdown() stops it
    """
    lobby = Lobby(game_seconds)
    for _ in range(players):
        lobby.join(version)
    return GameServer((host, port), color, version, lobby)


class GameRequestHandler(BaseHTTPRequestHandler):
    """Routes the five endpoints; anything else is 404 (or 405 for a known path)."""

    server_version = "SampleGame/1"

    @property
    def game(self) -> GameServer:
        return cast(GameServer, self.server)

    @property
    def route(self) -> str:
        """The request's path without a query string."""
        return urlsplit(self.path).path

    def do_GET(self) -> None:
        if self.route == "/health":
            self._send(HTTPStatus.OK, f"ok color={self.game.color} version={self.game.version}")
        elif self.route == "/connections":
            version = self.headers.get(VERSION_HEADER)
            self._send_json(HTTPStatus.OK, {"connections": self.game.lobby.count(version)})
        else:
            self._not_here()

    def do_POST(self) -> None:
        self._discard_body()
        if self.route == PLAYERS:
            player_id = self.game.lobby.join(self._version())
            self._send_json(HTTPStatus.CREATED, {"player_id": player_id})
        elif self.route == "/reconnect":
            notified = self.game.lobby.notify_reconnect(self._version())
            self._send_json(HTTPStatus.ACCEPTED, {"notified": notified})
        else:
            self._not_here()

    def do_DELETE(self) -> None:
        player_id = _player_id(self.route)
        if player_id is None:
            self._not_here()
        elif self.game.lobby.leave(player_id):
            self._send(HTTPStatus.NO_CONTENT, "")
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no player {player_id}"})

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request, tagged with the color: both colors usually log to one terminal.
        print(
            f"[{self.game.color} v{self.game.version}] {self.address_string()} {format % args}",
            file=sys.stderr,
            flush=True,
        )

    def _version(self) -> str:
        return self.headers.get(VERSION_HEADER) or self.game.version

    def _not_here(self) -> None:
        if self.route in ENDPOINTS or _player_id(self.route) is not None:
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command} not allowed"})
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.route}"})

    def _discard_body(self) -> None:
        # Read what the client sent, so the connection is not reset under an unread body.
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _send_json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body), "application/json")

    def _send(self, status: HTTPStatus, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)


def _player_id(route: str) -> str | None:
    """``p1`` for ``/players/p1``; None for any other path."""
    head, _, player_id = route.rpartition("/")
    return player_id if head == PLAYERS and player_id else None
