"""The Temporal server restarted while a deployment drains: the worker, never restarted,
reconnects, and the deployment ends as an undisturbed one does.

The dev server keeps its state in a database file. It is stopped (SIGTERM) once the deployment
is draining and started again on the same port with the same file. A player stays on the old
color until the server is back, so the drain can only end by checks made after the restart.
"""

import asyncio
import uuid
from contextlib import ExitStack
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from cli.deployment_kinds import start
from cli.deployments import handle_for
from local.processes import free_port, game_server, log_path
from models.deployment import Phase, State
from tests.reliability.fault_proxy import FaultProxy
from tests.reliability.harness import (
    EXPECTED_CHANGES,
    EXPECTED_STATE,
    DevServer,
    calls_made,
    changes,
    demo_environment,
    deployment_request,
    join,
    leave,
    logged_calls,
    polling,
    snapshot,
    until,
    worker_env,
    worker_process,
)
from workflows.deployment import BlueGreenDeployment

TIMEOUT = 120.0
"""Seconds for each wait: the worker's start, the drain, the end after the restart."""


async def test_a_deployment_drains_through_a_restart_of_the_temporal_server(
    aws: dict[str, str], tmp_path: Path
) -> None:
    service = f"sr{uuid.uuid4().hex[:4]}"
    worker_name = "reliability-restart-worker"
    with ExitStack() as stack:
        server = stack.enter_context(DevServer(free_port(), tmp_path / "temporal.db"))
        blue_url = stack.enter_context(game_server(free_port(), "blue", "1"))
        green_url = stack.enter_context(game_server(free_port(), "green", "2"))
        proxy = stack.enter_context(FaultProxy(aws["AWS_ENDPOINT_URL"]))
        resources, env = await asyncio.to_thread(
            demo_environment, tmp_path, service, blue_url, green_url
        )
        player = join(blue_url, "1")
        worker = stack.enter_context(
            worker_process(worker_name, worker_env(server.address, service, proxy.url))
        )
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        request = deployment_request(service, env)
        handle = handle_for(client, (await start(client, request, service)).id)
        await polling(worker, worker_name)

        async def draining() -> bool:
            status = await handle.query(BlueGreenDeployment.status)
            assert status.state == State.RUNNING, status.report
            return status.phase == Phase.DRAINING

        await until(draining, TIMEOUT, f"{handle.id} draining")
        server.stop()
        assert worker.poll() is None, "the worker exited when the server went away"
        server.start()
        leave(player)

        # A new connection: the old one's fate is the client library's business, not this test's.
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        final = await asyncio.wait_for(handle_for(client, handle.id).result(), TIMEOUT)

        assert worker.poll() is None, "the same worker process ran the deployment to its end"
        assert final.state == State.SUCCEEDED, final.report
        assert [entry.phase for entry in final.phases] == [
            Phase.SETTING_UP,
            Phase.DEPLOYING,
            Phase.WAITING_FOR_HEALTH,
            Phase.TESTING,
            Phase.SWITCHING,
            Phase.BAKING,
            Phase.DRAINING,
            Phase.CLEANING_UP,
            Phase.DONE,
        ]
        # The drain could only end once the player left, after the restart.
        assert final.last_connections is not None and final.last_connections.count == 0
        assert await asyncio.to_thread(snapshot, env, resources) == EXPECTED_STATE
        # Each change asked of AWS once, and logged once by the one worker.
        assert changes(proxy.calls, resources) == EXPECTED_CHANGES
        made = calls_made(proxy.calls)
        logged = logged_calls([log_path(worker_name)], handle.id)
        assert {step: logged.answered[step] for step in made} == made
