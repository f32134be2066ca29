"""``make demo``: deploy version 2 over version 1 on this machine, under load, check the
outcome and what players saw, stop.

    python -m local.demo [--regions N] [--scenario good|bad-canary]

Players (WebSocket sessions playing games) and HTTP requests go through HAProxy for the whole
deployment and until at least MIN_REQUESTS requests were sent. The last line says what they
saw: ``traffic: N requests, F failed; S sessions, C cut mid-game; R retried or redispatched``.

Exit 0 only when client.py reports success, the final state is what a finished deployment
leaves (green active in SSM with version 2, all traffic on green, green running its tasks and
blue scaled to zero) and players noticed nothing: F, C and R are 0, and HAProxy counted no
connection or response error. Otherwise exit 1 with a line saying why. ``--regions 2`` (``make
demo REGIONS=2``) makes the environment span the first N of ``local.stack.DEMO_REGIONS``: the
same deployment runs in each region at once, each with its own players, and everything is
checked in every one of them.

Every deployment is also judged by the metric analysis: the new color's 5xx share, measured
every second through Prometheus (which scrapes HAProxy), from its first traffic through the
bake. ``--scenario bad-canary`` (``make demo SCENARIO=bad-canary``) deploys ``game:2-errors20``
instead, a version that answers 500 to a fifth of ``GET /version``, as a 10 % canary: exit 0
only when the analysis rolled it back at that first step, SSM and all traffic are back on
blue, green is at zero again, and no session on blue was cut. The traffic line then counts
the requests that failed on the canary: the bad version's blast radius.

The deployment's notifications go to a local receiver standing in for Slack and a webhook
(``local/notify_receiver.py``); the demo prints a line for each message it received
(``notified (slack): switched game 2 → green (prod, us-west-2)``) and expects the switch and the
success on Slack and the success on the webhook (the bad canary: its rollback on both).
"""

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable

from local.aws_resources import INITIAL_VERSION
from local.data_plane.haproxy import frontend_name
from local.load import LoadSettings
from local.notify_receiver import NotificationReceiver
from local.processes import STATE_DIR, free_port, wait_until
from local.stack import DEMO_REGIONS, LocalStack, demo_regions, exit_code, local_stack
from local.state import format_state, mismatches, read_state
from local.traffic import TrafficReport, measured
from models.colors import Color

VERSION = "2"
IMAGE = "game:2"
BAD_VERSION = "2-errors20"
CANARY = """
# The demo's bad canary: 10 % of the traffic for a minute, judged every second.
[environments.{environment}.traffic]
strategy = "canary"
percent = 10
pause = "1m"
"""
TARGET: Color = "green"
PLAYERS = 50
"""WebSocket players per region, each playing games of GAME_SECONDS back to back."""
GAME_SECONDS = 2.0
REQUESTS_PER_SECOND = 400
"""HTTP requests per second per region, through HAProxy."""
MIN_REQUESTS = 10_000
"""The load runs on after the deployment until HAProxy counted this many requests in all."""
LOAD_SECONDS = 180
"""The most the load runs, whatever happens."""
NOTIFIED = {("slack", "switched"), ("slack", "succeeded"), ("webhook", "succeeded")}
"""The notifications a successful deployment sends with the local environment's notify tables."""
CANARY_NOTIFIED = {("slack", "rolled_back"), ("webhook", "rolled_back")}
"""Those of the bad canary, which the analysis rolls back."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    parser.add_argument(
        "--regions",
        type=int,
        default=1,
        choices=range(1, len(DEMO_REGIONS) + 1),
        metavar="N",
        help=f"deploy to the first N of {', '.join(DEMO_REGIONS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        choices=("good", "bad-canary"),
        default="good",
        help="good: version 2, all at once; bad-canary: a version failing 20%% of requests,"
        " as a 10%% canary that the analysis rolls back (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code says whether the deployment did what it should."""
    args = parse_args(argv)
    seen: list[TrafficReport] = []

    def run() -> int:
        # Free ports: the demo runs even next to `make dev` on 7233/8233.
        with (
            NotificationReceiver() as receiver,
            local_stack(
                ui=True,
                temporal_port=free_port(),
                ui_port=free_port(),
                db_file=STATE_DIR / "temporal" / "demo.db",
                regions=demo_regions(args.regions),
                players=0,
                analysis=True,
                notifications=receiver,
                say=say,
            ) as stack,
        ):
            if args.scenario == "bad-canary":
                return canary_and_check(stack, seen.append)
            return deploy_and_check(stack, seen.append)

    code = exit_code(run, say)
    # The last line, once everything has stopped: what players saw.
    for report in seen:
        print(report.line(), flush=True)
    return code


def deploy_and_check(stack: LocalStack, saw: Callable[[TrafficReport], object]) -> int:
    """Start the load, print the state, deploy, print the state again, and compare it and
    what players saw with what a deployment must leave, in every region of the stack; what
    players saw goes to ``saw``."""
    settings = load_settings(stack)
    with measured(stack.data_plane, settings, "demo-load") as seen:
        say(
            f"load: {PLAYERS} players and {REQUESTS_PER_SECOND} requests/s"
            f" through HAProxy{' in each region' if len(settings) > 1 else ''}"
        )
        code, problems = deploy(stack)
        started = time.monotonic()
        # HAProxy also counts the players' WebSocket handshakes: a margin over the minimum.
        wait_until(
            lambda: requests_so_far(stack) >= MIN_REQUESTS * 1.05,
            LOAD_SECONDS,
            f"{MIN_REQUESTS} requests through HAProxy",
        )
        say(
            f"load ran {time.monotonic() - started:.0f}s after the deployment to reach"
            f" {MIN_REQUESTS} requests; stopping it"
        )
    report = seen.report
    assert report is not None
    say(
        f"players reconnected {report.reconnected} times, onto"
        f" {', '.join(f'{c} {n}' for c, n in report.landed.items())}; HAProxy:"
        f" {report.connection_errors} connection errors, {report.response_errors} responses"
        f" cut off (stats: {stack.data_plane.stats})"
    )
    noticed = report.problems(MIN_REQUESTS, PLAYERS)
    if code != 0:
        say(f"FAILED: client.py deploy exited with {code}")
    elif problems:
        say(f"FAILED: the deployment reported success but {' | '.join(problems)}")
    elif noticed:
        say(f"FAILED: players noticed the deployment: {'; '.join(noticed)}")
    else:
        everywhere = f" in {', '.join(stack.regions)}" if len(stack.regions) > 1 else ""
        say(
            f"OK: version {VERSION} runs on {TARGET}, which has all the traffic; blue is at zero"
            + everywhere
        )
    saw(report)
    return 0 if code == 0 and not problems and not noticed else 1


def canary_and_check(stack: LocalStack, saw: Callable[[TrafficReport], object]) -> int:
    """Deploy the bad version as a canary under load; exit 0 only when the analysis rolled it
    back and blue, untouched, kept its players."""
    config = stack.config_path.with_name("deploy-canary.toml")
    config.write_text(stack.config_path.read_text() + CANARY.format(environment=stack.environment))
    command = stack.deploy_args(BAD_VERSION, f"game:{BAD_VERSION}", "--wait", config=config)
    with measured(stack.data_plane, load_settings(stack), "demo-load") as seen:
        say(f"load: {PLAYERS} players and {REQUESTS_PER_SECOND} requests/s through HAProxy")
        say(f"running: client.py {' '.join(command)}")
        code = stack.run_client(*command)
        time.sleep(2)  # the players' traffic once it is all back on blue
    report = seen.report
    assert report is not None
    problems = []
    for region in stack.regions:
        state = read_state(stack.region_config(region))
        say(f"state after{where(stack, region)}:")
        print(format_state(state), flush=True)
        problems += mismatches(state, "blue", INITIAL_VERSION, stack.regional[region].desired_count)
    problems += notified(stack, CANARY_NOTIFIED)
    if code != 1:
        problems.append(f"client.py deploy exited with {code}, not 1 (rolled back)")
    if report.cut_on.get("blue", 0):
        problems.append(f"{report.cut_on['blue']} sessions on blue were cut")
    if report.connection_errors or report.response_errors or report.retried:
        problems.append(f"HAProxy counted errors: {report.line()}")
    reasons: Counter[str] = Counter()
    for load in seen.loads.values():
        reasons.update(load.requests.failure_reasons)
    by_canary = reasons.pop("HTTP 500", 0)
    if reasons:
        problems.append(f"requests failed otherwise than by the canary's 500s: {dict(reasons)}")
    if problems:
        say(f"FAILED: {'; '.join(problems)}")
    else:
        say(
            f"OK: the analysis rolled {BAD_VERSION} back at its 10% step; {by_canary} of"
            f" {report.requests} requests were answered 500 by the canary, its blast radius; no"
            " session on blue was cut, and blue has all the traffic again"
        )
    saw(report)
    return 1 if problems else 0


def load_settings(stack: LocalStack) -> dict[str, LoadSettings]:
    """Each region's players and requests, through its HAProxy."""
    return {
        region: LoadSettings(
            url=url,
            players=PLAYERS,
            game_seconds=GAME_SECONDS,
            requests_per_second=REQUESTS_PER_SECOND,
            seconds=LOAD_SECONDS,
        )
        for region, url in stack.data_plane.players.items()
    }


def deploy(stack: LocalStack) -> tuple[int, list[str]]:
    """Print the state, deploy, print the state again; client.py's exit code and what differs
    from the state a finished deployment leaves, by region."""
    for region in stack.regions:
        say(f"state before{where(stack, region)}:")
        print(format_state(read_state(stack.region_config(region))), flush=True)
        players = stack.players_on(region, "blue", "1")
        say(f"blue has {players} players on version 1{where(stack, region)}")

    command = stack.deploy_args(VERSION, IMAGE, "--wait")
    say(f"running: client.py {' '.join(command)}")
    code = stack.run_client(*command)

    problems: list[str] = []
    for region in stack.regions:
        state = read_state(stack.region_config(region))
        say(f"state after{where(stack, region)}:")
        print(format_state(state), flush=True)
        players = stack.players_on(region, "green", "2")
        say(f"green has {players} players on version 2{where(stack, region)}")
        found = mismatches(state, TARGET, VERSION, stack.regional[region].desired_count)
        if found:
            in_region = f"in {region}: " if len(stack.regions) > 1 else ""
            problems.append(in_region + "; ".join(found))
    return code, problems + notified(stack)


def notified(stack: LocalStack, expected: set[tuple[str, str]] = NOTIFIED) -> list[str]:
    """Print a line per notification the local receiver got (all of them were sent before the
    deployment ended); what is missing of the ``expected`` (kind, event)."""
    if stack.notifications is None:
        return []
    received = stack.notifications.received
    for message in received:
        say(message.line())
    delivered = {(m.kind, m.event) for m in received if m.answered < 300}
    return [f"no {event} notification to {kind}" for kind, event in sorted(expected - delivered)]


def requests_so_far(stack: LocalStack) -> int:
    """HTTP requests HAProxy's frontends received, every region."""
    api = stack.data_plane.api
    return sum(
        row.req_tot
        for region in stack.regions
        for row in api.stats(frontend_name(region))
        if row.type == "frontend"
    )


def where(stack: LocalStack, region: str) -> str:
    """`` in REGION`` when the stack has several regions, else nothing."""
    return f" in {region}" if len(stack.regions) > 1 else ""


def say(line: str) -> None:
    """The demo's own lines, told apart from client.py's output."""
    print(f"demo: {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
