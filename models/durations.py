"""Durations written the way people write them in a TOML file: "90s", "15m", "2h", "1h30m"."""

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """Turn "1h30m" or a number of seconds into a timedelta; leave anything else to pydantic."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m or 2h")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str) and not value.startswith("P"):
        text = value.strip().replace(" ", "")
        parts = _PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 2h or 1h30m")
        return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
    # ISO 8601 ("PT15M") is how pydantic itself serialises a timedelta.
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def format_duration(value: timedelta) -> str:
    """The short form people read: 1h30m, 45s."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return f"{int(value.total_seconds() * 1000)}ms" if value else "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out
