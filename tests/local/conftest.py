"""Fixtures for the local data plane's tests: a real HAProxy, tiny backends, moto's ALB.

The AWS side (a listener forwarding to two target groups, a mesh with a virtual node per color)
comes from the activity tests' fixtures, on the session's moto server; the backends and the
requests are in ``tests/local/data_plane.py``.
"""

from collections.abc import Callable, Iterator

import pytest

from local.data_plane.haproxy import Haproxy, haproxy_server
from tests.activities.aws_resources import REGION

# The activity tests' AWS fixtures, shared rather than copied.
from tests.activities.conftest import alb, appmesh, elbv2, mesh, target_groups, vpc
from tests.local.data_plane import Backend

__all__ = ["alb", "appmesh", "elbv2", "mesh", "target_groups", "vpc"]


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    """Starts backends by name; releases and stops them all at the end."""
    started: list[Backend] = []

    def start(name: str) -> Backend:
        started.append(Backend(name))
        return started[-1]

    yield start
    for backend in started:
        backend.release()
        backend.kill()


@pytest.fixture
def haproxy() -> Iterator[Haproxy]:
    """HAProxy with one region, REGION, on free ports."""
    with haproxy_server({REGION: 0}) as proxy:
        yield proxy
