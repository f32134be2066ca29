"""Run a worker for the blue/green deployment workflows and their activities.

    python worker.py [--task-queue QUEUE] [--profile PROFILE]

Connection settings come from the environment and Temporal's config file, as for the Temporal
CLI (see cli/connection.py); AWS credentials and region from boto3's usual chain. Stops cleanly
on SIGINT or SIGTERM: running activities get time to finish, workflows resume on another worker.
"""

import argparse
import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from cli import exit_now
from cli.connection import connect, task_queue
from models.errors import BlueGreenError
from workflows import ALL_WORKFLOWS

# boto3 clients are thread-safe; activities block on AWS, so they run in threads.
ACTIVITY_THREADS = 32


async def run(queue: str, profile: str | None) -> None:
    """Poll ``queue`` until SIGINT or SIGTERM."""
    client = await connect(profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=ALL_WORKFLOWS,
            activities=ALL_ACTIVITIES,
            activity_executor=executor,
            max_concurrent_activities=ACTIVITY_THREADS,
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


def main() -> int:
    """Parse arguments, run, and map errors to the exit codes client.py also uses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-queue", default=task_queue(), help="default: %(default)s")
    parser.add_argument("--profile", help="Temporal config profile (default: TEMPORAL_PROFILE)")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(run(args.task_queue, args.profile))
    except BlueGreenError as err:
        print(f"worker: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    exit_now(main())
