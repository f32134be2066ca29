"""``python -m local.load --url http://127.0.0.1:8080 --seconds 60 [--players 4]
[--requests-per-second 50] [--result result.json] …`` (``--help`` lists every option).

Exit 0 after the run (the result written, one summary line on stdout); 2 for a bad option
(one line naming it; nothing started).
"""

import asyncio
import signal
import sys

from local.load.result import summary_line
from local.load.runner import run
from local.load.settings import LoadSettings, SettingsError, parse_args


async def run_until_signal(settings: LoadSettings) -> None:
    """The run, stopped early by SIGINT or SIGTERM; the result written and summed up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    result = await run(settings, stop)
    if settings.result is not None:
        result.write(settings.result)
    print(summary_line(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
    except SettingsError as err:
        print(f"python -m local.load: {err}", file=sys.stderr)
        return 2
    asyncio.run(run_until_signal(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
