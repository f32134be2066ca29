"""``python -m sample_service --port 8081 --color blue --version 1 [--host 127.0.0.1]``

Serves until SIGTERM or SIGINT, then closes every open session (code 1001) and exits 0. A
version such as ``3-errors20`` or ``3-unhealthy`` misbehaves on purpose (sample_service.behaviour).
"""

import argparse
import asyncio
import signal
import sys

from sample_service.game_server import GameServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the version must be a non-empty word (it travels in HTTP headers)."""
    parser = argparse.ArgumentParser(prog="python -m sample_service", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--color", choices=["blue", "green"], required=True)
    parser.add_argument("--version", required=True, help="this server's version, e.g. 2")
    args = parser.parse_args(argv)
    if not args.version or not args.version.isprintable() or " " in args.version:
        parser.error(f"--version must be one word without spaces, not {args.version!r}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be from 0 to 65535, not {args.port}")
    return args


async def serve(args: argparse.Namespace) -> int:
    """Listen, wait for a signal, close everything."""
    game = GameServer(args.color, args.version)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        server = await game.listen(args.host, args.port)
    except OSError as err:
        print(
            f"sample_service: cannot listen on {args.host}:{args.port}: {err.strerror or err}",
            file=sys.stderr,
        )
        return 1
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        game.log(f"sample game server listening on http://{host}:{port}")
        await stopping.wait()
        game.log(f"stopping: closing {game.sessions.count()} session(s)")
    # Stopping already: a second SIGTERM (a supervisor that asks twice) changes nothing, and
    # must not reach the event loop's handler once asyncio.run has closed the loop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    game.log("sample game server stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
