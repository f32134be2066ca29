"""Players that stay: real WebSocket sessions on a sample game server that ignore the reconnect
notice until the test closes them, so that a drain waits for as long as the test likes."""

import json
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from websockets.sync.client import ClientConnection, connect

VERSION_HEADER = "X-Game-Version"


class StayingPlayers:
    """``count`` sessions on ``game_url``'s ``/play`` on client ``version`` (None: without the
    version header), each welcomed before the constructor returns; ``leave()`` closes them
    cleanly (code 1000)."""

    def __init__(self, game_url: str, version: str | None, count: int = 1) -> None:
        self._stack = ExitStack()
        self.sessions: list[ClientConnection] = []
        self.welcomes: list[dict[str, Any]] = []
        url = "ws" + game_url.removeprefix("http") + "/play"
        headers = {VERSION_HEADER: version} if version is not None else {}
        try:
            for _ in range(count):
                session = self._stack.enter_context(
                    connect(url, additional_headers=headers, open_timeout=5)
                )
                self.welcomes.append(json.loads(session.recv(timeout=5)))
                self.sessions.append(session)
        except BaseException:
            self._stack.close()
            raise

    def received(self, session: int = 0, timeout: float = 5) -> dict[str, Any]:
        """The next frame ``session`` got (after its welcome); TimeoutError without one."""
        message: dict[str, Any] = json.loads(self.sessions[session].recv(timeout=timeout))
        return message

    def leave(self) -> None:
        """Every session closes; the drain can end."""
        self._stack.close()

    def __enter__(self) -> "StayingPlayers":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.leave()
