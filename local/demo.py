"""``make demo``: deploy version 2 over version 1 on this machine, check the outcome, stop.

Exit 0 only when client.py reports success and the final state is what a finished deployment
leaves: green active in SSM with version 2, all traffic on green, green running its tasks and
blue scaled to zero. Otherwise exit 1 with one line saying why.
"""

import json
import sys
import urllib.request

from local.processes import STATE_DIR, free_port
from local.stack import LocalStack, interrupt_on_sigterm, local_stack
from local.state import format_state, mismatches, read_state
from models.colors import Color
from models.config import expand_url

VERSION = "2"
IMAGE = "game:2"
TARGET: Color = "green"


def main() -> int:
    """Run the demo; the exit code says whether the deployment did what it should."""
    interrupt_on_sigterm()
    try:
        # Free ports: the demo runs even next to `make dev` on 7233/8233.
        with local_stack(
            ui=True,
            temporal_port=free_port(),
            ui_port=free_port(),
            db_file=STATE_DIR / "temporal" / "demo.db",
            say=say,
        ) as stack:
            return deploy_and_check(stack)
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    except (RuntimeError, TimeoutError, OSError) as err:
        say(f"FAILED: {err}")
        return 1


def deploy_and_check(stack: LocalStack) -> int:
    """Print the state, deploy, print the state again and compare it with the expected one."""
    env = stack.environment_config()
    say("state before:")
    print(format_state(read_state(env)), flush=True)
    old_players = players_on(stack, "blue", "1")
    say(f"blue has {old_players} players on version 1")

    command = stack.deploy_args(VERSION, IMAGE, "--wait")
    say(f"running: client.py {' '.join(command)}")
    code = stack.run_client(*command)

    state = read_state(env)
    say("state after:")
    print(format_state(state), flush=True)
    say(f"blue has {players_on(stack, 'blue', '1')} players on version 1 (had {old_players})")
    if code != 0:
        say(f"FAILED: client.py deploy exited with {code}")
        return 1
    problems = mismatches(state, TARGET, VERSION, stack.resources.desired_count)
    if problems:
        say(f"FAILED: the deployment reported success but {'; '.join(problems)}")
        return 1
    say(f"OK: version {VERSION} runs on {TARGET}, which has all the traffic; blue is at zero")
    return 0


def players_on(stack: LocalStack, color: Color, version: str) -> int:
    """What ``color``'s game server counts on ``version``, asked as the drain phase asks."""
    connections = stack.environment_config().connections
    if connections is None:
        raise RuntimeError(f"{stack.config_path} has no [connections] section")
    url = expand_url(connections.url, stack.resources.urls[color])
    request = urllib.request.Request(url, headers={connections.version_header: version})
    with urllib.request.urlopen(request, timeout=5) as answer:
        count: int = json.loads(answer.read())["connections"]
        return count


def say(line: str) -> None:
    """The demo's own lines, told apart from client.py's output."""
    print(f"demo: {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
