"""Bad versions on purpose: what a version string asks the server to do wrong.

A version may carry behaviours after a dash, as an image tag would (``game:3-errors20``):

- ``-errorsN`` (N from 1 to 100): ``GET /version`` answers 500 to N % of requests, spread
  evenly and deterministically (``errors20``: the 5th, 10th, 15th, … request);
- ``-unhealthy``: ``GET /health`` answers 503.

The version reported everywhere is the whole string (``3-errors20``); anything after a dash that
is not one of these is just part of the version.
"""

import re
from dataclasses import dataclass

_ERRORS = re.compile(r"errors(\d{1,3})")


@dataclass(frozen=True)
class Behaviour:
    """What a server of this version does wrong; nothing by default."""

    error_percent: int = 0
    """Percentage of ``GET /version`` requests answered with 500."""
    unhealthy: bool = False
    """``GET /health`` answers 503."""

    def fails(self, request_number: int) -> bool:
        """Whether the ``request_number``-th ``/version`` request (from 1) gets a 500: exactly
        ``error_percent`` of every 100 in a row, evenly spread."""
        n = request_number
        return n * self.error_percent // 100 != (n - 1) * self.error_percent // 100


def parse_behaviour(version: str) -> Behaviour:
    """The behaviours in the dash-separated parts of ``version`` after the first one:
    ``parse_behaviour("3-errors20-unhealthy") == Behaviour(error_percent=20, unhealthy=True)``;
    ``"3-beta"`` and ``"3-errors0"`` do nothing wrong."""
    error_percent, unhealthy = 0, False
    for part in version.split("-")[1:]:
        errors = _ERRORS.fullmatch(part)
        if errors and 1 <= int(errors[1]) <= 100:
            error_percent = int(errors[1])
        elif part == "unhealthy":
            unhealthy = True
    return Behaviour(error_percent, unhealthy)
