"""The local load generator: real HTTP requests and real WebSocket players against one URL on
this machine (the load balancer's frontend, or a sample game server), to measure what players
see during a deployment. ``python -m local.load --help``; from Python::

    result = await run(LoadSettings(url="http://127.0.0.1:8080", seconds=30, players=4,
                                    requests_per_second=20))
    with load_in_background(settings) as load:   # python -m local.load in the background
        ...
    load.result

Loopback only: a URL whose host is not 127.0.0.0/8, ::1 or localhost is refused. Every run is
bounded by ``seconds`` and stops by itself.
"""

from local.load.background import BackgroundLoad, load_in_background
from local.load.result import LoadResult, summary_line
from local.load.runner import run
from local.load.settings import LoadSettings, SettingsError, is_loopback, parse_args

__all__ = [
    "BackgroundLoad",
    "LoadResult",
    "LoadSettings",
    "SettingsError",
    "is_loopback",
    "load_in_background",
    "parse_args",
    "run",
    "summary_line",
]
