"""``python -m sample_service --port 8081 --color blue [--version 1] [--players N] [--game-seconds S]``

Serves until SIGTERM or SIGINT, then exits 0.
"""

import argparse
import signal
import sys
import threading
from types import FrameType

from sample_service.game_server import make_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --game-seconds must be positive."""
    parser = argparse.ArgumentParser(prog="python -m sample_service", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--color", choices=["blue", "green"], required=True)
    parser.add_argument("--version", default="1", help="this server's version (default: 1)")
    parser.add_argument(
        "--players", type=int, default=0, help="players connected on --version at start"
    )
    parser.add_argument(
        "--game-seconds",
        type=float,
        default=30,
        help="longest rest of a game a player finishes after being told to reconnect"
        " (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.game_seconds <= 0:
        parser.error("--game-seconds must be greater than zero")
    if args.players < 0:
        parser.error("--players must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Serve in a thread while the main thread waits for a signal, then shut down cleanly."""
    args = parse_args(argv)
    server = make_server(
        args.port,
        args.color,
        args.version,
        players=args.players,
        game_seconds=args.game_seconds,
        host=args.host,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # server.shutdown() blocks until serve_forever returns, so it cannot run inside a signal
    # handler on the serving thread: serve in another thread and stop from this one. It notices
    # a shutdown within one poll interval: 0.1 s instead of the default 0.5 s.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="http")
    thread.start()
    print(
        f"sample game server {args.color} version {args.version} on {server.url}"
        f" with {args.players} player(s)",
        file=sys.stderr,
        flush=True,
    )
    stopping.wait()
    server.shutdown()
    thread.join()
    server.server_close()
    print(f"sample game server {args.color} stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
