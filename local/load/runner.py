"""One load run: the HTTP requests and the players side by side, bounded in time."""

import asyncio
from typing import Any

from local.load.http_load import TIMEOUT, HttpLoad
from local.load.players import ACK_TIMEOUT, CLOSE_TIMEOUT, Player
from local.load.result import LoadResult, Tally
from local.load.settings import LoadSettings


async def run(
    settings: LoadSettings, stop: asyncio.Event | None = None, tally: Tally | None = None
) -> LoadResult:
    """Run the load until ``settings.seconds`` have passed, ``stop`` is set, or nothing is left
    to do (``max_requests`` sent and every player gone); what it saw.

    After the stop, requests in flight get their answer or their timeout, and each player
    finishes its game and closes cleanly; whoever is still at it after that is cancelled.
    ``settings.ready`` is touched once every player got its first welcome (at once without
    players); ``settings.result`` is not written here (``python -m local.load`` does).
    ``tally`` counts as things happen: ``tally.result()`` meanwhile is what was seen so far.
    """
    stopping = stop or asyncio.Event()
    tally = tally or Tally()
    waiting = settings.players

    def welcomed() -> None:
        nonlocal waiting
        waiting -= 1
        if waiting == 0 and settings.ready is not None:
            settings.ready.touch()

    if settings.players == 0 and settings.ready is not None:
        settings.ready.touch()
    tasks = [
        asyncio.create_task(Player(settings, tally, stopping, welcomed).run())
        for _ in range(settings.players)
    ]
    if settings.requests_per_second > 0:
        tasks.append(asyncio.create_task(HttpLoad(settings, tally).run(stopping)))
    timer = asyncio.get_running_loop().call_later(settings.seconds, stopping.set)
    stopped = asyncio.create_task(stopping.wait())
    try:
        pending: set[asyncio.Future[Any]] = set(tasks)
        while pending and not stopping.is_set():
            _, pending = await asyncio.wait(
                {stopped, *pending}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopped)
        stopping.set()
        if pending:
            grace = max(settings.game_seconds + ACK_TIMEOUT + CLOSE_TIMEOUT, 2 * TIMEOUT) + 1
            await asyncio.wait(pending, timeout=grace)
    finally:
        timer.cancel()
        stopped.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a load task failed") from task.exception()
    return tally.result()
