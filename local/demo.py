"""``make demo``: deploy version 2 over version 1 on this machine, check the outcome, stop.

    python -m local.demo [--regions N]

Exit 0 only when client.py reports success and the final state is what a finished deployment
leaves: green active in SSM with version 2, all traffic on green, green running its tasks and
blue scaled to zero. Otherwise exit 1 with one line saying why. ``--regions 2`` (``make demo
REGIONS=2``) makes the environment span the first N of ``local.stack.DEMO_REGIONS``: the same
deployment runs in each region at once, and the final state is checked in every one of them.
"""

import argparse
import sys

from local.processes import STATE_DIR, free_port
from local.stack import DEMO_REGIONS, LocalStack, demo_regions, exit_code, local_stack
from local.state import format_state, mismatches, read_state
from models.colors import Color

VERSION = "2"
IMAGE = "game:2"
TARGET: Color = "green"


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code says whether the deployment did what it should."""
    args = parse_args(argv)

    def run() -> int:
        # Free ports: the demo runs even next to `make dev` on 7233/8233.
        with local_stack(
            ui=True,
            temporal_port=free_port(),
            ui_port=free_port(),
            db_file=STATE_DIR / "temporal" / "demo.db",
            regions=demo_regions(args.regions),
            say=say,
        ) as stack:
            return deploy_and_check(stack)

    return exit_code(run, say)


def deploy_and_check(stack: LocalStack) -> int:
    """Print the state, deploy, print the state again and compare it with the expected one,
    in every region of the stack."""
    old_players: dict[str, int] = {}
    for region in stack.regions:
        say(f"state before{where(stack, region)}:")
        print(format_state(read_state(stack.region_config(region))), flush=True)
        old_players[region] = stack.players_on(region, "blue", "1")
        say(f"blue has {old_players[region]} players on version 1{where(stack, region)}")

    command = stack.deploy_args(VERSION, IMAGE, "--wait")
    say(f"running: client.py {' '.join(command)}")
    code = stack.run_client(*command)

    problems: list[str] = []
    for region in stack.regions:
        state = read_state(stack.region_config(region))
        say(f"state after{where(stack, region)}:")
        print(format_state(state), flush=True)
        now = stack.players_on(region, "blue", "1")
        say(
            f"blue has {now} players on version 1{where(stack, region)} (had {old_players[region]})"
        )
        found = mismatches(state, TARGET, VERSION, stack.regional[region].desired_count)
        if found:
            in_region = f"in {region}: " if len(stack.regions) > 1 else ""
            problems.append(in_region + "; ".join(found))
    if code != 0:
        say(f"FAILED: client.py deploy exited with {code}")
        return 1
    if problems:
        say(f"FAILED: the deployment reported success but {' | '.join(problems)}")
        return 1
    everywhere = f" in {', '.join(stack.regions)}" if len(stack.regions) > 1 else ""
    say(
        f"OK: version {VERSION} runs on {TARGET}, which has all the traffic; blue is at zero"
        + everywhere
    )
    return 0


def where(stack: LocalStack, region: str) -> str:
    """`` in REGION`` when the stack has several regions, else nothing."""
    return f" in {region}" if len(stack.regions) > 1 else ""


def say(line: str) -> None:
    """The demo's own lines, told apart from client.py's output."""
    print(f"demo: {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
