"""Start, follow and inspect blue/green deployments — for CI and for people.

    python client.py deploy --config deploy.toml --environment prod --version 2 \\
        --image 123456789012.dkr.ecr.us-west-2.amazonaws.com/game:2 --wait
        [--region us-east-1 …] [--switch-together] [--no-fail-fast]   # multi-region environments
    python client.py status deploy-game-prod [--json]
    python client.py list
    python client.py approve deploy-game-prod [--by NAME] [--comment TEXT]
    python client.py rollback deploy-game-prod --reason TEXT [--by NAME] [--json]
    python client.py switch --config deploy.toml --environment prod [--region R] [--reason TEXT]

An environment with ``regions`` or ``waves`` deploys as one multi-region deployment (same ID, one
child per region, ``deploy-game-prod-us-east-1``); status, approve and rollback take either ID.

While ``deploy --wait`` and ``rollback`` follow a deployment they print a line per phase entered;
on a terminal, lines under them show the phase, the time in it, health and clients left (per
region), redrawn in place (cli/live.py).

``deploy`` (without --wait too) and ``switch`` go on once Temporal has let the operation run:
while another one on the same service and environment (a deployment, a switch) holds the
environment's lease (workflows/lease.py), it is refused, naming that one (cli/leases.py).

Exit codes: 0 succeeded (deploy without --wait: started and let run; rollback: rolled back),
1 failed or rolled back (rollback: production not fully restored), 2 invalid input (nothing
started), 3 Temporal unreachable, 4 refused: the state of the deployment does not allow it (an
operation on the same service and environment still runs; nothing waits for approval; it has
ended; the other color is not running), 5 no worker: ``deploy``, ``switch``, ``approve`` and
``rollback`` found no worker polling the task queue for BLUEGREEN_NO_WORKER_TIMEOUT seconds
(default 60; the deployment goes on when one comes).
Temporal connection settings as for the Temporal CLI (TEMPORAL_ADDRESS, …).
"""

import argparse
import asyncio
import json
import sys

from cli import deployment_kinds, leases, live, recent, switching, updates
from cli.arguments import (
    approve_request,
    build_parser,
    deployment_request,
    rollback_request,
    switch_request,
)
from cli.deployment_kinds.kind import AnyKind
from cli.deployments import AnyHandle, AnyRequest, print_err, print_now
from cli.lookup import lookup
from cli.render import table
from cli.workers import WorkerWatch
from models.deployment import State
from models.errors import BlueGreenError, NoWorkerError
from runtime.connection import connect, task_queue
from runtime.process_exit import exit_now
from runtime.tracing import tracing


async def deploy(args: argparse.Namespace) -> int:
    """Validate, start, and with --wait follow to the end."""
    request = deployment_request(args)  # before connecting: bad input starts nothing
    kind = deployment_kinds.for_request(request)  # one region or several: decided once, here
    watch = WorkerWatch.from_environment()  # also bad input
    client = await connect(args.profile)
    queue = task_queue()
    handle = await kind.start(client, request, queue)  # the trace's root
    say = print_err if args.json else print_now
    try:
        # Temporal decides whether it may run: another operation on the environment refuses it.
        handle = await leases.admitted(
            client,
            handle,
            lambda: kind.start(client, request, queue),
            request.service,
            request.environment,
            queue,
            watch,
        )
    except NoWorkerError:
        say(_started_line(handle, request, kind))  # it goes on when a worker comes
        raise
    say(_started_line(handle, request, kind))
    if request.require_approval and not args.wait:
        say(f"it waits for approval before switching: client.py approve {handle.id}")
    if not args.wait:
        if args.json:
            started = {
                "deployment_id": handle.id,
                "run_id": handle.result_run_id,
                "state": "running",
            }
            print(json.dumps(started))
        return 0
    with live.progress(say, sys.stderr if args.json else sys.stdout, kind=kind) as on_status:
        final = await watch.bounded(client, queue, lambda: kind.follow(client, handle, on_status))
    code = kind.exit_code(final)
    if args.json:
        print(kind.as_json(final, run_id=handle.result_run_id, exit_code=code))
    else:
        print(kind.summary(final))
    return code


def _started_line(handle: AnyHandle, request: AnyRequest, kind: AnyKind) -> str:
    return (
        f"started deployment {handle.id} (run {handle.result_run_id}):"
        f" {request.service} {request.version} → {request.environment}, {kind.where(request)}"
    )


async def status(args: argparse.Namespace) -> int:
    """Show one deployment; the exit code is that of its state (running counts as 0)."""
    client = await connect(args.profile)
    kind, found = await lookup(client, args.deployment_id)
    code = 0 if found.state == State.RUNNING else kind.exit_code(found)
    print(kind.as_json(found, exit_code=code) if args.json else kind.summary(found))
    return code


async def list_deployments(args: argparse.Namespace) -> int:
    """A table of running and recent deployments: multi-region ones, their regions, one-region ones."""
    client = await connect(args.profile)
    rows = await recent.recent(client, args.limit)
    columns = [
        "deployment_id",
        "status",
        "state",
        "phase",
        "started",
        "service",
        "environment",
        "region",
        "version",
    ]
    cells = [[c.upper() for c in columns]] + [[str(row[c]) for c in columns] for row in rows]
    print("\n".join(table(cells)))
    return 0


async def approve(args: argparse.Namespace) -> int:
    """Let a deployment waiting for approval switch traffic (in every region, for several)."""
    request = approve_request(args)
    watch = WorkerWatch.from_environment()
    client = await connect(args.profile)
    found, approved = await updates.approve(client, args.deployment_id, watch, request)
    print(found.kind.approved_line(approved))
    return 0


async def rollback(args: argparse.Namespace) -> int:
    """Ask a deployment to put production back (in every region), then follow it to its end."""
    request = rollback_request(args)
    watch = WorkerWatch.from_environment()
    client = await connect(args.profile)
    found, accepted = await updates.rollback(client, args.deployment_id, watch, request)
    kind = found.kind
    say = print_err if args.json else print_now
    say(kind.rollback_accepted_line(accepted))
    stream = sys.stderr if args.json else sys.stdout
    with live.progress(say, stream, since=accepted, kind=kind) as shown:
        final = await watch.bounded(
            client, found.description.task_queue, lambda: kind.follow(client, found.handle, shown)
        )
    code = kind.rollback_exit_code(final)
    print(kind.as_json(final, exit_code=code) if args.json else kind.summary(final))
    return code


async def switch(args: argparse.Namespace) -> int:
    """Send traffic back to the other color, if it still runs and is healthy."""
    request = switch_request(args)  # before connecting: bad input starts nothing
    watch = WorkerWatch.from_environment()  # also bad input
    client = await connect(args.profile)
    result = await switching.switch(client, request, task_queue(), watch)
    if args.json:
        print(json.dumps({"exit_code": 0, **result.model_dump(mode="json")}, indent=2))
    else:
        print("\n".join(switching.switched_lines(result)))
    return 0


COMMANDS = {
    "deploy": deploy,
    "status": status,
    "list": list_deployments,
    "approve": approve,
    "rollback": rollback,
    "switch": switch,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command; every expected problem is one line on stderr and an exit code."""
    try:
        args = build_parser().parse_args(argv)
        with tracing("bluegreen-client"):  # OTEL_* variables; flushed before exit
            return asyncio.run(COMMANDS[args.command](args))
    except BlueGreenError as err:
        print(f"client.py: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(
            "client.py: interrupted; the deployment goes on (see client.py status)", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    exit_now(main())
