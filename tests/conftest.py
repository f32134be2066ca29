"""Shared fixtures: a real moto server over HTTP for the AWS side."""

from collections.abc import Iterator

import pytest

from local.processes import environ, moto_server


@pytest.fixture(scope="session")
def aws() -> Iterator[dict[str, str]]:
    """A moto server for the whole session; boto3 reaches it through AWS_ENDPOINT_URL."""
    with moto_server() as env, environ(env):
        yield env
