"""What ``client.py`` shows while it follows a deployment (``deploy --wait``, ``rollback``).

Not on a terminal (a CI log, a pipe, a file): a line per phase entered, as it is entered, and
nothing else — the kind's ``progress_printer``. On a terminal the same lines scroll by and, under
them, a few lines say where the deployment is now: its phase and for how long, the last health
check, the clients left on the old color; a row per region when there are several. Those lines
are redrawn in place (ANSI cursor-up and clear-line) when they change, at most four times a
second, and erased once the deployment has ended, before the final summary is printed.
"""

import asyncio
import io
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from cli import deployment_kinds
from cli.deployment_kinds.kind import AnyKind
from cli.deployments import AnyStatus
from models.deployment import State

MIN_INTERVAL = 0.25
"""Seconds between two redraws at least: at most four a second."""
DEFAULT_WIDTH = 80
UP = "\x1b[{}A"
"""Cursor up N lines (CUU)."""
CLEAR_LINE = "\x1b[2K"
"""Erase the whole line (EL 2)."""
CLEAR_BELOW = "\x1b[J"
"""Erase from the cursor to the end of the screen (ED 0): what a shorter block leaves behind."""

OnStatus = Callable[[AnyStatus], None]


def is_live(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can redraw lines (not ``TERM=dumb``)."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
    return terminal and os.environ.get("TERM", "") != "dumb"


@contextmanager
def progress(
    say: Callable[[str], None],
    stream: TextIO,
    since: AnyStatus | None = None,
    *,
    kind: AnyKind | None = None,
) -> Iterator[OnStatus]:
    """A ``follow`` callback for ``stream``: the live view on a terminal, otherwise the plain
    phase lines through ``say`` (which writes to ``stream``) exactly as before.

    ``since``: what was already shown (``rollback`` starts after the accepted status). ``kind``:
    the deployment's kind; without it, the kind of the first status seen. On the
    way out the live lines are erased, so that the summary printed next stands alone; after an
    error or Ctrl-C they stay, saying where the deployment was.
    """
    if not is_live(stream):
        yield phase_printer(say, since, kind)
        return
    view = LiveView(stream, since, kind=kind)
    try:
        yield view
    except BaseException:
        view.close(erase=False)
        raise
    view.close()


def phase_printer(
    say: Callable[[str], None], since: AnyStatus | None = None, kind: AnyKind | None = None
) -> OnStatus:
    """``kind``'s ``progress_printer`` (without ``kind``: that of the first status seen)."""
    printer = kind.progress_printer(say, since) if kind else None

    def show_new_phases(status: AnyStatus) -> None:
        nonlocal printer
        if printer is None:
            printer = deployment_kinds.of_status(status).progress_printer(say, since)
        printer(status)

    return show_new_phases


class LiveView:
    """Phase lines that scroll, and under them a block of lines redrawn in place.

    Call it with each status seen. It writes only when something changed: a phase entered, or
    the block's text (the time in phase moves on every second). A change within
    ``min_interval`` of the last redraw waits for the end of that interval (on the running
    event loop; without one, for the next status).
    """

    def __init__(
        self,
        stream: TextIO,
        since: AnyStatus | None = None,
        *,
        kind: AnyKind | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        width: int | None = None,
        height: int | None = None,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._now = now
        self._size = (width, height)
        self._min_interval = min_interval
        self._new_lines: list[str] = []
        self._kind = kind
        self._phase_lines = phase_printer(self._new_lines.append, since, kind)
        self._latest: AnyStatus | None = None
        self._block: list[str] = []
        """The block as it is on the screen."""
        self._last_draw = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def __call__(self, status: AnyStatus) -> None:
        if self._closed:
            return
        self._phase_lines(status)
        self._kind = self._kind or deployment_kinds.of_status(status)
        self._latest = status
        self._update()

    def close(self, erase: bool = True) -> None:
        """Print the phase lines not shown yet; erase the block (or leave it, ``erase=False``)."""
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        block = [] if erase else self._fitted()
        if self._new_lines or block != self._block:
            self._draw(block)
        self._closed = True

    def _update(self) -> None:
        if self._closed:
            return
        block = self._fitted()
        if not self._new_lines and block == self._block:
            return
        wait = self._last_draw + self._min_interval - self._clock()
        if wait > 0:
            self._later(wait)
            return
        self._draw(block)

    def _later(self, wait: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # drawn with the next status
        self._timer = loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._update()

    def _fitted(self) -> list[str]:
        """The block for the latest status, cut to the terminal: a line that wrapped or a block
        taller than the screen would throw the cursor-up count off."""
        if self._latest is None or self._kind is None or self._latest.state != State.RUNNING:
            return []  # none once it has ended
        width, height = self._terminal_size()
        lines = self._kind.status_block(self._latest, self._now())[: max(height - 1, 1)]
        return [_cut(line, width - 1) for line in lines]

    def _draw(self, block: list[str]) -> None:
        out = [UP.format(len(self._block))] if self._block else []
        out += [f"{CLEAR_LINE}{line}\n" for line in [*self._new_lines, *block]]
        out.append(CLEAR_BELOW)
        self._stream.write("".join(out))
        self._stream.flush()
        self._block = block
        self._new_lines.clear()  # the same list: the phase printer appends to it
        self._last_draw = self._clock()

    def _terminal_size(self) -> tuple[int, int]:
        width, height = self._size
        if width is None or height is None:
            try:
                size = os.get_terminal_size(self._stream.fileno())
            except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
                size = shutil.get_terminal_size()
            # A new pseudo-terminal reports 0 x 0 until someone sets its size.
            width = width or size.columns or DEFAULT_WIDTH
            height = height or size.lines or 24
        return width, height


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
