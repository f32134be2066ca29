"""Shared fixtures: a real moto server over HTTP for the AWS side, a Temporal dev server.

Every test is bounded (pytest-timeout: ``timeout`` in pyproject.toml, more for the few that take
longer, as ``@pytest.mark.timeout``). A test that runs past its limit fails with its name, the
stacks of every thread and of every asyncio task: most tests wait on an event loop, where the
main thread's stack only shows the loop waiting.
"""

import asyncio
import io
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_timeout

from local.processes import environ, moto_server
from tests import dev_server


@pytest.fixture(scope="session")
def aws() -> Iterator[dict[str, str]]:
    """A moto server for the whole session; boto3 reaches it through AWS_ENDPOINT_URL."""
    with moto_server() as env, environ(env):
        yield env


@pytest.fixture(scope="module")
def temporal() -> Iterator[str]:
    """A Temporal dev server for the module (updates need it), without the Web UI."""
    with dev_server.temporal() as address:
        yield address


def timeout_of(item: pytest.Item) -> float:
    """The item's time limit in seconds: its ``timeout`` mark, or the configured default."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with the longest tests first, keeping the order inside each: the parallel workers
    (``--dist loadfile``) start on them at once and fill in with the short ones."""
    longest: dict[str, float] = {}
    for item in items:
        longest[item.location[0]] = max(longest.get(item.location[0], 0.0), timeout_of(item))
    items.sort(key=lambda item: -longest[item.location[0]])


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's signal method, which fails the test and goes on with the next one, with
    the asyncio tasks' stacks added: they show where a test awaits."""
    if settings.method != "signal":
        return None

    def on_timeout(signum: int, frame: Any) -> None:
        __tracebackhide__ = True
        _print_tasks(item)
        pytest_timeout.timeout_sigalrm(item, settings)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # pytest-timeout's attribute
    signal.signal(signal.SIGALRM, on_timeout)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True


def _print_tasks(item: pytest.Item) -> None:
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no event loop running: a test without one
        return
    terminal = item.config.get_terminal_writer()
    for task in tasks:
        stack = io.StringIO()
        task.print_stack(file=stack)
        terminal.sep("~", title=f"asyncio task {task.get_name()}")
        terminal.write(stack.getvalue())
