"""Shared fixtures: a real moto server over HTTP for the AWS side."""

import os
from collections.abc import Iterator

import pytest

from local.processes import moto_server


@pytest.fixture(scope="session")
def aws() -> Iterator[dict[str, str]]:
    """A moto server for the whole session; boto3 reaches it through AWS_ENDPOINT_URL."""
    with moto_server() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
