"""Shared fixtures: a real moto server over HTTP for the AWS side, a Temporal dev server."""

from collections.abc import Iterator

import pytest

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
