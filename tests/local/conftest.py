"""Fixtures for the local data plane's tests: a real HAProxy, tiny backends, moto's ALB and
CloudWatch.

The AWS side (a listener forwarding to two target groups, a mesh with a virtual node per color)
comes from the activity tests' fixtures, on the session's moto server; the backends and the
requests are in ``tests/local/data_plane.py``.
"""

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import boto3
import pytest

from local.data_plane.haproxy import Haproxy, haproxy_server
from local.data_plane.load_balancer import LoadBalancerFollower
from models.activities import RouterInput
from tests.activities.aws_resources import REGION

# The activity tests' AWS fixtures, shared rather than copied.
from tests.activities.conftest import alb, appmesh, elbv2, mesh, target_groups, vpc
from tests.local.data_plane import Backend

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

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
def cloudwatch(aws: dict[str, str]) -> "CloudWatchClient":
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def haproxy() -> Iterator[Haproxy]:
    """HAProxy with one region, REGION, on free ports."""
    with haproxy_server({REGION: 0}) as proxy:
        yield proxy


@pytest.fixture
def follow(haproxy: Haproxy) -> Iterator[Callable[[RouterInput], LoadBalancerFollower]]:
    """Starts a follower of a router on ``haproxy``, running in a thread until the test ends."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(router: RouterInput) -> LoadBalancerFollower:
        follower = LoadBalancerFollower(router, haproxy.api)
        stop = threading.Event()
        thread = threading.Thread(target=follower.run, args=(stop,), name="follower", daemon=True)
        thread.start()
        running.append((stop, thread))
        return follower

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(10)
