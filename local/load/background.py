"""``python -m local.load`` as a background process, for callers that do something meanwhile
(the demo deploys while players play) and then read what the load saw."""

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.load.result import LoadResult
from local.load.settings import LoadSettings
from local.processes import STATE_DIR, background, log_path, wait_until

LOAD_DIR = STATE_DIR / "load"
"""Where results and ready files go when the settings name none."""
STOP_GRACE = 10.0
"""Seconds on top of a game's length that a stopped run may take to finish."""


@dataclass
class BackgroundLoad:
    """A load process started by ``load_in_background``."""

    settings: LoadSettings
    """With ``result`` (and, with players, ``ready``) set."""
    log: Path
    result: LoadResult | None = None
    """Read once the block has ended."""


@contextmanager
def load_in_background(
    settings: LoadSettings, name: str | None = None, ready_timeout: float = 30
) -> Iterator[BackgroundLoad]:
    """Start the load; yield once every player got its welcome; at the end of the block,
    SIGINT (players finish their game), wait for it (bounded), read the result::

        with load_in_background(LoadSettings(url=url, seconds=600, players=4)) as load:
            ...  # deploy
        print(load.result.requests.sent)

    ``name`` (default ``load-PORT``) names the log (``.local/logs/NAME.log``) and, unless the
    settings name them, the result and ready files under ``.local/load/``. A run that ended by
    itself before the block did is fine. RuntimeError when the process wrote no result.
    """
    name = name or f"load-{settings.port}"
    result = settings.result or LOAD_DIR / f"{name}.json"
    ready = settings.ready or (LOAD_DIR / f"{name}.ready" if settings.players else None)
    for path in (result, ready):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
    settings = settings.model_copy(update={"result": result, "ready": ready})
    load = BackgroundLoad(settings, log_path(name))
    command = [sys.executable, "-m", "local.load", *settings.to_args()]
    with background(name, command) as process:
        if ready is not None:
            what = f"{name}: every player welcomed"
            wait_until(ready.exists, ready_timeout, what, process, load.log)
        try:
            yield load
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            # Still running after that: background() kills it, and no result is found below.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(settings.game_seconds + STOP_GRACE)
    if not result.exists():
        raise RuntimeError(f"{name} wrote no result to {result} (see {load.log})")
    load.result = LoadResult.read(result)
