"""The one loop every part of the data plane runs: a step, again and again, until told to stop.

moto or HAProxy may be away for a moment (starting, restarting, busy): a failed step is logged
once per distinct error, and the loop goes on.
"""

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("local.data_plane")


def keep_running(
    step: Callable[[], object], stop: threading.Event, interval: float, name: str
) -> None:
    """Call ``step`` every ``interval`` seconds until ``stop`` is set; ``name`` in the log."""
    failing: str | None = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            step()
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            if message != failing:
                logger.warning("%s: failed, retrying: %s", name, message)
            failing = message
        else:
            if failing is not None:
                logger.info("%s: works again", name)
            failing = None
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
