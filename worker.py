"""Run a worker for the blue/green deployment workflows and their activities.

    python worker.py [--task-queue QUEUE] [--profile PROFILE]

Connection settings come from the environment and Temporal's config file, as for the Temporal
CLI (see runtime/connection.py); AWS credentials and region from boto3's usual chain. Stops cleanly
on SIGINT or SIGTERM: running activities get time to finish, workflows resume on another worker.

Traces go where the OTEL_* variables say (runtime/tracing.py). Log lines end with what they are
about (activities/logs.py): ``deployment=… region=… step=ecs.UpdateService request_id=…``.
"""

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from activities.logs import LogfmtFormatter
from models.errors import BlueGreenError
from runtime.connection import connect, task_queue
from runtime.heartbeats import ActivityHeartbeats
from runtime.process_exit import exit_now
from runtime.tracing import tracing
from workflows import ALL_WORKFLOWS

# boto3 clients are thread-safe; activities block on AWS, so they run in threads.
ACTIVITY_THREADS = 32


async def run(
    queue: str,
    profile: str | None,
    workflows: Sequence[type] = ALL_WORKFLOWS,
    activities: Sequence[Callable[..., Any]] = ALL_ACTIVITIES,
) -> None:
    """Run ``workflows`` and ``activities`` from ``queue`` until SIGINT or SIGTERM."""
    client = await connect(profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=workflows,
            activities=activities,
            activity_executor=executor,
            max_concurrent_activities=ACTIVITY_THREADS,
            interceptors=[ActivityHeartbeats()],
            graceful_shutdown_timeout=timedelta(seconds=20),
        )
        async with worker:
            logging.info(
                "worker polling task queue %r at %s",
                queue,
                client.service_client.config.target_host,
            )
            await stop.wait()
            logging.info("stopping: letting running activities finish")
    logging.info("worker stopped")


def configure_logging() -> None:
    """INFO and up on stderr, one line each, with the deployment, region, step and request ID."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # botocore says at INFO where each new client found its credentials and endpoint.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # The formatter prints these as key=value; Temporal would also append them as a dict.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


def main(
    workflows: Sequence[type] = ALL_WORKFLOWS,
    activities: Sequence[Callable[..., Any]] = ALL_ACTIVITIES,
) -> int:
    """Parse arguments, run, and map errors to the exit codes client.py also uses.

    ``workflows`` and ``activities`` are the product's; the benchmarks' worker
    (``bench/_worker.py``) adds its own to them, and so runs this very worker.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-queue", default=task_queue(), help="default: %(default)s")
    parser.add_argument("--profile", help="Temporal config profile (default: TEMPORAL_PROFILE)")
    args = parser.parse_args()
    configure_logging()
    try:
        with tracing("bluegreen-worker"):
            asyncio.run(run(args.task_queue, args.profile, workflows, activities))
    except BlueGreenError as err:
        print(f"worker: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    exit_now(main())
