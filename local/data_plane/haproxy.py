"""HAProxy for the local environment: its configuration, its process and its Runtime API.

One HAProxy serves every region: per region a frontend ``players-<region>`` on its own port and
a backend ``tasks-<region>`` with no servers in the file. Servers come and go at run time
through the Runtime API (HAProxy's dynamic servers), which the load-balancer follower drives::

    with haproxy_server({"us-west-2": 8080}) as proxy:
        proxy.api.add_server(backend_name("us-west-2"), "blue-9001-1", "127.0.0.1", 9001, 256)
        urllib.request.urlopen(proxy.player_url("us-west-2"))

The Runtime API listens on TCP loopback and takes one command per connection (HAProxy's
non-interactive mode). Debian's HAProxy 2.6 is the one tested (``make system-packages``).
"""

import csv
import re
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel

from local.processes import (
    STATE_DIR,
    background,
    debian_command,
    free_port,
    log_path,
    require_free_port,
    wait_until,
)

DEBIAN_HAPROXY = Path("/usr/sbin/haproxy")
MAX_WEIGHT = 256
"""The highest server weight HAProxy accepts (0 … 256; 0 takes no new traffic)."""
STATS_FRONTEND = "stats"

K = TypeVar("K", bound=str)

AdminState = Literal["ready", "drain", "maint"]
"""A server's administrative state, as ``set server … state`` sets it."""


def haproxy_binary() -> str:
    """The ``haproxy`` command: on PATH, else Debian's; RuntimeError when neither exists."""
    return debian_command("haproxy", DEBIAN_HAPROXY)


def frontend_name(region: str) -> str:
    """The frontend where the players of ``region`` connect."""
    return f"players-{region}"


def backend_name(region: str) -> str:
    """The backend holding the tasks (servers) of ``region``, both colors."""
    return f"tasks-{region}"


def haproxy_config(
    players: Mapping[str, int], *, runtime_port: int, stats_port: int, host: str = "127.0.0.1"
) -> str:
    """The configuration for ``players`` (region → the port its players connect to)."""
    if not players:
        raise ValueError("HAProxy needs at least one region")
    regions = "".join(
        f"""
frontend {frontend_name(region)}
    bind {host}:{port}
    default_backend {backend_name(region)}

# No servers here: the load-balancer follower adds and removes them through the Runtime API.
backend {backend_name(region)}
    balance roundrobin
"""
        for region, port in players.items()
    )
    return f"""# Written by local/data_plane/haproxy.py: the local ALB's data plane.
global
    # The Runtime API; severity-output marks errors in answers with [3] or lower.
    stats socket ipv4@{host}:{runtime_port} level admin severity-output number
    # One thread is plenty for the local players and makes round robin exact.
    nbthread 1

defaults
    mode http
    timeout connect 2s
    timeout client 1m
    timeout server 1m
    # A WebSocket is a tunnel once upgraded: it must outlast a whole game.
    timeout tunnel 1h
    # Retried and redispatched on connection failures: the final measurement counts both
    # (wretr, wredis), since they hide a dead server from the players.
    retries 3
    option redispatch
{regions}
frontend {STATS_FRONTEND}
    bind {host}:{stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats
    stats refresh 2s
"""


def check_config(path: Path) -> None:
    """``haproxy -c``: RuntimeError with HAProxy's words when it refuses the file."""
    done = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(path)], capture_output=True, timeout=30, check=False
    )
    if done.returncode != 0:
        said = (done.stdout + done.stderr).decode(errors="replace").strip()
        raise RuntimeError(f"haproxy -c refused {path}: {said}")


class RuntimeApiError(RuntimeError):
    """HAProxy answered a Runtime API command with an error."""

    def __init__(self, command: str, answer: str) -> None:
        super().__init__(f"HAProxy refused `{command}`: {answer}")
        self.command = command
        self.answer = answer


class ServerState(BaseModel):
    """One server of a backend, as ``show servers state`` reports it."""

    backend: str
    name: str
    address: str
    port: int
    weight: int
    """The weight set (``add server … weight``, ``set server … weight``): 0 … 256."""
    admin_state: AdminState
    running: bool
    """HAProxy's operational state: without health checks, up unless in maintenance."""


class StatRow(BaseModel):
    """One line of ``show stat``: a frontend, a backend (svname BACKEND) or a server.

    Counters are cumulative since HAProxy started (a server's since it was added); those that
    do not apply to the line's type are 0.
    """

    pxname: str
    svname: str
    type: Literal["frontend", "backend", "server", "listener"]
    status: str
    """UP, DOWN, OPEN, MAINT, DRAIN, or "no check" for a ready server without health checks."""
    addr: str = ""
    weight: int = 0
    """The effective weight (a backend's: its servers' total)."""
    uweight: int = 0
    """The weight set by the user (``set server … weight``)."""
    scur: int = 0
    """Current sessions (for HTTP: requests in progress and WebSocket tunnels)."""
    smax: int = 0
    stot: int = 0
    """Sessions so far: every request (or WebSocket) sent to the server."""
    req_tot: int = 0
    econ: int = 0
    """Requests that could not connect to a server in the end (a backend's also counts those
    that found no server at all)."""
    eresp: int = 0
    """Responses that failed (the server closed or reset while answering)."""
    wretr: int = 0
    """Connection retries."""
    wredis: int = 0
    """Redispatches: retries sent to another server."""
    cli_abrt: int = 0
    srv_abrt: int = 0
    hrsp_1xx: int = 0
    hrsp_2xx: int = 0
    hrsp_3xx: int = 0
    hrsp_4xx: int = 0
    hrsp_5xx: int = 0


_STAT_TYPES: dict[str, Literal["frontend", "backend", "server", "listener"]] = {
    "0": "frontend",
    "1": "backend",
    "2": "server",
    "3": "listener",
}
_SEVERITY = re.compile(r"^\[(\d)\]: ", re.MULTILINE)
_ERROR_SEVERITY = 4
"""syslog severities: 0 … 3 are errors, 4 a warning; 5 … 7 notices and information."""
_SAFE = re.compile(r"^[A-Za-z0-9_.:\-]+$")

# show servers state: srv_admin_state is a bit field (server.h, SRV_ADMF_*).
_MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40  # forced, inherited, config, resolution, hostname
_DRAIN_BITS = 0x08 | 0x10  # forced, inherited


class RuntimeApi:
    """HAProxy's Runtime API over TCP: one command per connection."""

    def __init__(self, host: str, port: int, timeout: float = 5) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def command(self, line: str) -> str:
        """Send one command; its answer without the severity marks.

        RuntimeApiError when HAProxy answers with an error; OSError when it cannot be reached.
        """
        if "\n" in line or ";" in line:
            raise ValueError(f"one Runtime API command at a time, not {line!r}")
        with socket.create_connection((self.host, self.port), self.timeout) as sock:
            sock.settimeout(self.timeout)
            sock.sendall(line.encode() + b"\n")
            chunks: list[bytes] = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks).decode(errors="replace")
        severities = [int(s) for s in _SEVERITY.findall(answer)]
        text = _SEVERITY.sub("", answer).strip()
        if any(s <= _ERROR_SEVERITY for s in severities) or text.startswith("Unknown command"):
            raise RuntimeApiError(line, text.splitlines()[0] if text else "(no answer)")
        return text

    def answers(self) -> bool:
        """Whether the Runtime API answers right now."""
        try:
            self.command("show info")
        except (OSError, RuntimeApiError):
            return False
        return True

    def servers(self, backend: str) -> list[ServerState]:
        """The servers of ``backend``, in maintenance or not."""
        lines = self.command(f"show servers state {_checked(backend)}").splitlines()
        header = next((line[2:].split() for line in lines if line.startswith("# ")), None)
        if header is None:
            raise RuntimeApiError(f"show servers state {backend}", "no header in the answer")
        servers: list[ServerState] = []
        for line in lines:
            fields = line.split()
            if line.startswith("#") or len(fields) != len(header):
                continue  # the format version, the header
            row = dict(zip(header, fields, strict=True))
            admin = int(row["srv_admin_state"])
            servers.append(
                ServerState(
                    backend=row["be_name"],
                    name=row["srv_name"],
                    address=row["srv_addr"],
                    port=int(row["srv_port"]),
                    weight=int(row["srv_uweight"]),
                    admin_state=(
                        "maint"
                        if admin & _MAINT_BITS
                        else "drain"
                        if admin & _DRAIN_BITS
                        else "ready"
                    ),
                    running=row["srv_op_state"] == "2",  # SRV_ST_RUNNING
                )
            )
        return servers

    def add_server(self, backend: str, name: str, address: str, port: int, weight: int) -> None:
        """Add a server taking traffic at once (HAProxy adds it in maintenance: enabled here)."""
        server = f"{_checked(backend)}/{_checked(name)}"
        where = f"{_checked(address)}:{int(port)}"
        self.command(f"add server {server} {where} weight {_weight(weight)}")
        self.command(f"enable server {server}")

    def set_weight(self, backend: str, name: str, weight: int) -> None:
        """The server's weight, 0 … 256: its share of new requests among the ready servers."""
        self.command(f"set server {_checked(backend)}/{_checked(name)} weight {_weight(weight)}")

    def set_state(self, backend: str, name: str, state: AdminState) -> None:
        """ready: takes traffic; drain: no new requests, those in progress go on; maint: down
        (sessions in progress still go on: nothing here cuts them)."""
        self.command(f"set server {_checked(backend)}/{_checked(name)} state {state}")

    def delete_server(self, backend: str, name: str) -> bool:
        """Delete a server in maintenance without connections; False when HAProxy refuses
        because it is not (yet) so: its counters go with it."""
        try:
            self.command(f"del server {_checked(backend)}/{_checked(name)}")
        except RuntimeApiError as err:
            if "maintenance" in err.answer or "connections" in err.answer:
                return False
            raise
        return True

    def stats(self, proxy: str | None = None) -> list[StatRow]:
        """``show stat``: every frontend, backend and server, or only ``proxy``'s lines."""
        line = "show stat" if proxy is None else f"show stat {_checked(proxy)} -1 -1"
        text = self.command(line)
        if not text.startswith("# "):
            raise RuntimeApiError(line, f"not a CSV answer: {text[:80]!r}")
        rows = csv.DictReader(text[2:].splitlines())
        fields = set(StatRow.model_fields) - {"type"}
        return [
            StatRow.model_validate(
                {key: value for key, value in row.items() if key in fields and value != ""}
                | {"type": _STAT_TYPES.get(row["type"], "listener")}
            )
            for row in rows
            if row.get("pxname")
        ]


def server_weights(shares: Mapping[K, float], tasks: Mapping[K, int]) -> dict[K, int]:
    """The HAProxy weight of each server of each group (color), all of a group's alike.

    As on an ALB, a group's share of the new requests is its router weight's share, however
    many tasks it has: the weight picks the target group, then its tasks share that. So each
    server's weight is proportional to ``share / tasks``, as whole numbers of at most 256:

    >>> server_weights({"blue": 90, "green": 10}, {"blue": 3, "green": 1})
    {'blue': 255, 'green': 85}

    (3 * 255 : 85 is exactly 90 : 10.) Of the roundings, the one closest to the shares wins.
    A group with a share above 0 never rounds down to 0, so a tiny share over many tasks gets
    more than its due (1 % over 10 tasks beside 99 % on one: 10 * 1 against 256, 3.8 %). A
    group without tasks gets nothing: the others share its part (an ALB would answer 503 for
    it; weights cannot).
    """
    per_task = {
        group: share / tasks[group] if share > 0 and tasks.get(group, 0) > 0 else 0.0
        for group, share in shares.items()
    }
    served = {group: shares[group] for group, value in per_task.items() if value > 0}
    if not served:
        return dict.fromkeys(shares, 0)
    largest = max(per_task.values())
    wanted = {group: share / sum(served.values()) for group, share in served.items()}
    best: tuple[float, dict[K, int]] | None = None
    for top in range(MAX_WEIGHT, 0, -1):  # the largest weights first: finer steps later
        weights = {
            group: max(1, round(value / largest * top)) if value > 0 else 0
            for group, value in per_task.items()
        }
        total = sum(weights[group] * tasks[group] for group in served)
        error = max(abs(weights[g] * tasks[g] / total - wanted[g]) for g in served)
        if best is None or error < best[0] - 1e-12:
            best = (error, weights)
    return best[1] if best else dict.fromkeys(shares, 0)


def _checked(word: str) -> str:
    """A name or address as one Runtime API word: nothing that could start another command."""
    if not _SAFE.match(word):
        raise ValueError(f"{word!r} is not a name HAProxy's Runtime API can take")
    return word


def _weight(weight: int) -> int:
    if not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"an HAProxy weight is 0 … {MAX_WEIGHT}, not {weight}")
    return weight


@dataclass(frozen=True)
class Haproxy:
    """A running HAProxy: where its players, stats and Runtime API are."""

    host: str
    players: dict[str, int]
    """Region → the port of its players' frontend."""
    runtime_port: int
    stats_port: int
    config_path: Path
    process: subprocess.Popen[bytes]
    api: RuntimeApi

    def player_url(self, region: str) -> str:
        return f"http://{self.host}:{self.players[region]}"

    @property
    def stats_url(self) -> str:
        return f"http://{self.host}:{self.stats_port}/stats"

    @property
    def metrics_url(self) -> str:
        """Prometheus's text format, from HAProxy's own exporter."""
        return f"http://{self.host}:{self.stats_port}/metrics"


@contextmanager
def haproxy_server(
    players: Mapping[str, int],
    *,
    runtime_port: int | None = None,
    stats_port: int | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 30,
) -> Iterator[Haproxy]:
    """HAProxy for ``players`` (region → port; 0 picks a free one), its output in
    .local/logs/haproxy-<runtime port>.log; yields once its Runtime API answers."""
    ports = {region: port or free_port() for region, port in players.items()}
    runtime_port = runtime_port or free_port()
    stats_port = stats_port or free_port()
    for what, port in [*(("players", p) for p in ports.values()), ("stats", stats_port)]:
        require_free_port(port, f"HAProxy's {what} frontend")
    require_free_port(runtime_port, "HAProxy's Runtime API")
    name = f"haproxy-{runtime_port}"
    config_path = STATE_DIR / "haproxy" / f"{name}.cfg"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        haproxy_config(ports, runtime_port=runtime_port, stats_port=stats_port, host=host)
    )
    check_config(config_path)
    api = RuntimeApi(host, runtime_port)
    # -db: in the foreground, logging to stderr (the log file), stopped by background's SIGTERM.
    with background(name, [haproxy_binary(), "-f", str(config_path), "-db"]) as process:
        wait_until(api.answers, startup_timeout, "HAProxy answering", process, log_path(name))
        yield Haproxy(host, ports, runtime_port, stats_port, config_path, process, api)
