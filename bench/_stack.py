"""What the benchmarks share about the local environment: starting it as they all do, running
the measurement with a client of its Temporal (and where the worker's log is when it fails),
the benchmark's own worker, and the deployment requests they start.
"""

import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from local.processes import background, free_port, log_path, wait_until, worker_log
from local.stack import REGION, LocalStack, local_stack
from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest

ResultsT = TypeVar("ResultsT")


@contextmanager
def bench_stack(
    config_path: Path,
    say: Callable[[str], None],
    *,
    server_config: Mapping[str, object] | None = None,
    regions: Sequence[str] = (REGION,),
    game_seconds: float = 3,
    start_worker: bool = True,
) -> Iterator[LocalStack]:
    """``local_stack`` as a benchmark starts it: no Web UI, a free port, no players seated,
    ``server_config`` as the dev server's dynamic config; stopped on leaving the block."""
    with local_stack(
        ui=False,
        temporal_port=free_port(),
        ui_port=None,
        config_path=config_path,
        players=0,
        game_seconds=game_seconds,
        start_worker=start_worker,
        regions=regions,
        dynamic_config=server_config,
        say=say,
    ) as stack:
        yield stack


async def connect(stack: LocalStack) -> Client:
    """A client of the stack's Temporal, with the product's (pydantic) data converter."""
    return await Client.connect(
        stack.temporal_address, namespace="default", data_converter=pydantic_data_converter
    )


def measure_on(
    stack: LocalStack,
    measure: Callable[[Client], Coroutine[Any, Any, ResultsT]],
    say: Callable[[str], None],
    log: Path | None = None,
) -> ResultsT:
    """``measure`` run to its end with a client of the stack (``connect``); when it fails or is
    interrupted, says where the worker's log is (``log``, else ``worker.py``'s) and re-raises."""

    async def connected() -> ResultsT:
        return await measure(await connect(stack))

    try:
        return asyncio.run(connected())
    except BaseException:
        say(f"worker log: {log or worker_log(stack.temporal_address)}")
        raise


@contextmanager
def bench_worker(stack: LocalStack) -> Iterator[Path]:
    """``python -m bench._worker`` against the stack, until it says it polls its task queue;
    yields its log. ``local.processes.worker`` runs ``worker.py`` alone."""
    name = f"bench-worker-{stack.temporal_address.rpartition(':')[2]}"
    command = [sys.executable, "-m", "bench._worker"]
    with background(name, command, env=stack.env) as process:
        log = log_path(name)
        wait_until(
            lambda: "worker polling task queue" in log.read_text(errors="replace"),
            60,
            "the benchmark's worker polling",
            process,
            log,
        )
        yield log


def deployment_request(
    service: str, environment: str, env: EnvironmentConfig, version: str, by: str
) -> DeploymentRequest:
    """A deployment of ``version`` (image SERVICE:VERSION) to ``env``, requested by ``by``."""
    return DeploymentRequest(
        service=service,
        environment=environment,
        version=version,
        image=f"{service}:{version}",
        target=env,
        requested_by=by,
    )
