"""Start and stop the local environment's processes: each a context manager that cleans up.

Used by ``make demo``, ``make dev``, the end-to-end tests and the benchmarks alike.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def debian_command(name: str, where: Path) -> str:
    """``name`` on PATH, else Debian's ``where``: the local environment's Debian packages
    (``make system-packages``); RuntimeError saying so when neither is there."""
    found = shutil.which(name)
    if found:
        return found
    if where.exists():
        return str(where)
    raise RuntimeError(f"{name} is not installed: run `make system-packages`")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, on ``host`` (a loopback address)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until something accepts connections on 127.0.0.1:port; fails early if ``process`` died."""
    wait_until(lambda: listening(port), timeout, f"listening on 127.0.0.1:{port}", process)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``check`` until it holds. ``what`` names the awaited state in the errors.

    Raises RuntimeError as soon as ``process`` has exited, TimeoutError after ``timeout``
    seconds; both point at ``log`` where given.
    """
    see = f" (see {log})" if log else ""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before {what}{see}"
            )
        if check():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not {what} after {timeout:.0f}s{see}")
        time.sleep(0.1)


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port right now."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require_free_port(port: int, what: str) -> None:
    """Refuse to start ``what`` on a port that is taken: waiting for the port to accept
    connections would otherwise mistake whoever holds it for the new process."""
    if listening(port):
        raise RuntimeError(
            f"cannot start {what}: 127.0.0.1:{port} is in use (is `make dev` running?)"
        )


RUNNING: dict[str, subprocess.Popen[bytes]] = {}
"""The processes ``background`` runs right now, by name (``temporal-7233``, ``moto-5000``,
``worker-7233``, …): the benchmarks read how much CPU each has used."""


def log_path(name: str) -> Path:
    """Where ``background(name, ...)`` writes the process's output."""
    return STATE_DIR / "logs" / f"{name}.log"


@contextmanager
def background(
    name: str,
    command: Sequence[str],
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    unset: tuple[str, ...] = (),
    startup_timeout: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` with its output in .local/logs/NAME.log; SIGTERM (then SIGKILL) at exit.

    The process gets this environment plus ``env``, without the variables starting with any of
    the ``unset`` prefixes.
    """
    path = log_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if not (unset and k.startswith(unset))},
                **(env or {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        RUNNING[name] = process
        try:
            if port is not None:
                wait_for_port(port, startup_timeout, process)
            yield process
        finally:
            RUNNING.pop(name, None)
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
def moto_server(
    port: int | None = None, env: Mapping[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """moto's server on 127.0.0.1 (``env``: its settings, e.g. INITIAL_NO_AUTH_ACTION_COUNT);
    yields the environment that points boto3 at it."""
    port = port or free_port()
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with background(f"moto-{port}", command, port=port, env=env):
        yield {**MOTO_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored on exit: boto3 in this process reads it."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


TEMPORAL = BIN / "temporal"
DEFAULT_TASK_QUEUE = "blue-green-deployments"
"""The worker's task queue when BLUEGREEN_TASK_QUEUE is not set (as in runtime/connection.py)."""


def temporal_cli(address: str, *args: str, namespace: str = "default") -> str | None:
    """The output of ``temporal ARGS --address ADDRESS -o json``; None when it fails.

    The caller's TEMPORAL_* variables and config file are ignored: a TLS or API-key setting
    meant for a real cluster would make every call to the local dev server fail.
    """
    command = [str(TEMPORAL), *args, "--address", address, "--namespace", namespace]
    command += ["--disable-config-env", "--disable-config-file", "-o", "json"]
    done = subprocess.run(command, capture_output=True, timeout=30, check=False)
    return done.stdout.decode() if done.returncode == 0 else None


@contextmanager
def temporal_dev_server(
    port: int = 7233,
    ui_port: int | None = 8233,
    db_file: Path | None = None,
    *,
    search_attributes: Mapping[str, str] | None = None,
    dynamic_config: Mapping[str, object] | None = None,
    startup_timeout: float = 60,
) -> Iterator[str]:
    """The Temporal CLI's dev server on 127.0.0.1:port; yields its address once it serves.

    ``ui_port`` None runs it without the Web UI. ``db_file`` keeps its state across runs
    (in memory without it). ``search_attributes`` registers custom ones: {"Name": "Keyword"}.
    ``dynamic_config`` sets server settings, e.g. {"history.transferProcessorMaxPollRPS": 200}.
    """
    require_free_port(port, "the Temporal dev server")
    if ui_port is not None:
        require_free_port(ui_port, "the Temporal Web UI")
    command = [str(TEMPORAL), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "error"]
    if ui_port is None:
        command.append("--headless")
    else:
        # The newsfeed is fetched from the internet, which the local environment must not need.
        command += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        command += ["--db-filename", str(db_file)]
    for key, kind in (search_attributes or {}).items():
        command += ["--search-attribute", f"{key}={kind}"]
    for key, value in (dynamic_config or {}).items():
        command += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    name = f"temporal-{port}"
    address = f"127.0.0.1:{port}"
    # The server reads OTEL_* itself and refuses exporters it does not know (console): the
    # variables are meant for client.py and worker.py.
    with background(
        name, command, port=port, unset=("OTEL_",), startup_timeout=startup_timeout
    ) as process:
        # The port opens before the frontend answers: wait until it reports SERVING.
        wait_until(
            lambda: '"SERVING"' in (temporal_cli(address, "operator", "cluster", "health") or ""),
            startup_timeout,
            f"serving at {address}",
            process,
            log_path(name),
        )
        yield address


@contextmanager
def game_server(port: int, color: str, version: str) -> Iterator[str]:
    """The sample game service for one color on 127.0.0.1:port; yields its base URL."""
    require_free_port(port, f"the {color} game server")
    command = [sys.executable, "-m", "sample_service", "--port", str(port), "--color", color]
    command += ["--version", version]
    with background(f"game-{color}-{port}", command, port=port):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def worker(
    env: Mapping[str, str], ready_timeout: float = 60, args: Sequence[str] = ("worker.py",)
) -> Iterator[subprocess.Popen[bytes]]:
    """``worker.py`` with ``env`` added to this process's environment (TEMPORAL_ADDRESS and
    the AWS variables at least); yields once it polls its task queue. ``args`` are Python's
    arguments: the benchmarks run ``-m bench._worker``, worker.py with a workflow added."""
    address = env["TEMPORAL_ADDRESS"]
    namespace = env.get("TEMPORAL_NAMESPACE") or "default"
    queue = env.get("BLUEGREEN_TASK_QUEUE") or DEFAULT_TASK_QUEUE
    name = worker_log(address).stem

    def polling() -> bool:
        # Legacy mode: only the pollers, and it lists them seconds sooner than the default mode.
        described = temporal_cli(
            address,
            "task-queue",
            "describe",
            "--task-queue",
            queue,
            "--legacy-mode",
            namespace=namespace,
        )
        return bool(described and json.loads(described).get("pollers"))

    with background(name, [sys.executable, *args], env=env) as process:
        wait_until(polling, ready_timeout, f"polling {queue!r}", process, log_path(name))
        yield process


def worker_log(address: str) -> Path:
    """The log of the worker ``worker()`` starts for the Temporal server at ``address``."""
    return log_path(f"worker-{address.rpartition(':')[2]}")
