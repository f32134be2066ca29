"""One exception root for everything a user can get wrong or that stops a command.

Each carries the exit code ``client.py`` ends with, so the CLI maps errors to codes in one place.
"""

from pydantic import ValidationError


class BlueGreenError(Exception):
    """Root of this project's errors; ``str(err)`` is one line meant for a person."""

    exit_code = 1


class ConfigError(BlueGreenError):
    """Bad input: the config file, an argument. Nothing was started."""

    exit_code = 2


class TemporalUnavailableError(BlueGreenError):
    """The Temporal service could not be reached."""

    exit_code = 3


class RefusedError(BlueGreenError):
    """Refused: the state of a deployment (or a switch) does not allow what was asked."""

    exit_code = 4


def one_line(err: ValidationError) -> str:
    """The first problem pydantic found, as ``field.path: message``."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-")) or "input"
    message = first["msg"].removeprefix("Value error, ")
    more = err.error_count() - 1
    return f"{where}: {message}" + (f" (and {more} more problem(s))" if more else "")
