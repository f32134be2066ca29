"""One exception root for everything a user can get wrong or that stops a command.

Each carries the exit code ``client.py`` ends with, so the CLI maps errors to codes in one place.
"""

from typing import Any

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


class NoWorkerError(BlueGreenError):
    """No worker polls the task queue: a wait for one would never end. Nothing was given up on
    the server side; the deployment goes on when a worker comes."""

    exit_code = 5


def one_line(err: ValidationError, document: Any = None) -> str:
    """The first problem pydantic found, as ``field.path: message``.

    With the ``document`` that was validated (a parsed TOML file), the path is the keys of that
    document: a union's tag (``router.app_mesh.…``) is the model's word, not the file's.
    """
    first = err.errors()[0]
    loc = [part for part in first["loc"] if not str(part).startswith("function-")]
    if document is not None:
        loc = _keys_in(document, loc)
    where = ".".join(str(part) for part in loc) or "input"
    message = first["msg"].removeprefix("Value error, ")
    more = err.error_count() - 1
    return f"{where}: {message}" + (f" (and {more} more problem(s))" if more else "")


def _keys_in(document: Any, loc: list[int | str]) -> list[int | str]:
    """The parts of ``loc`` that are keys (or indices) of ``document`` on the way down, and a
    last part that is missing from it (a required key)."""
    keys: list[int | str] = []
    node = document
    for position, part in enumerate(loc):
        child = _child(node, part)
        if child is not _MISSING:
            node = child
        elif position < len(loc) - 1:
            continue  # a step of the model's own, such as a union's tag
        keys.append(part)
    return keys


_MISSING = object()


def _child(node: Any, part: int | str) -> Any:
    """``node[part]`` in a parsed document, or _MISSING."""
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _MISSING
