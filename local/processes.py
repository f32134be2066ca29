"""Start and stop the local environment's processes: each a context manager that cleans up.

Used by ``make demo``, ``make dev``, the end-to-end tests and the benchmarks alike.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STATE_DIR = ROOT / ".local"
"""Git-ignored: logs, the dev server's database, generated demo config."""

# Credentials for moto only; moto accepts any. Real deployments use the worker's IAM role.
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until something accepts connections on 127.0.0.1:port; fails early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before listening"
            )
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


@contextmanager
def background(
    name: str,
    command: Sequence[str],
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` with its output in .local/logs/NAME.log; SIGTERM (then SIGKILL) at exit."""
    logs = STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if port is not None:
                wait_for_port(port, startup_timeout, process)
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def moto_server(port: int | None = None) -> Iterator[dict[str, str]]:
    """moto's server on 127.0.0.1; yields the environment that points boto3 at it."""
    port = port or free_port()
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with background(f"moto-{port}", command, port=port):
        yield {**MOTO_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
