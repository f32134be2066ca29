"""Plain HTTP load: ``GET /version`` at a steady rate over a few keep-alive connections.

A minimal HTTP/1.1 client on asyncio streams: one request at a time per connection, a body
by Content-Length, chunks, or up to the close. A connection is opened again after an error or
a ``Connection: close``; a request that finds its reused connection closed by the server
before any byte of the answer is sent again once on a new one, as browsers do.
"""

import asyncio
import json

from local.load.result import Tally
from local.load.settings import LoadSettings

TIMEOUT = 5.0
"""Seconds a request may take, connecting included, or wait for a free connection."""
MAX_BODY = 1 << 20


class BadResponse(Exception):
    """The answer is not HTTP/1.x as expected."""


class StaleConnection(Exception):
    """A reused connection was closed before the answer began: sending again is safe."""


class Connection:
    """One keep-alive connection to ``host:port``, opened on first use."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """``GET path``: the status and the body."""
        try:
            return await self._exchange(path)
        except StaleConnection:
            return await self._exchange(path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def _exchange(self, path: str) -> tuple[int, bytes]:
        reused = self._streams is not None
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        host = f"[{self.host}]" if ":" in self.host else self.host
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{self.port}\r\nUser-Agent: local.load\r\n"
            "Accept: application/json\r\n\r\n".encode()
        )
        try:
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as err:
            began = isinstance(err, asyncio.IncompleteReadError) and err.partial
            if reused and not began:
                self.close()
                raise StaleConnection() from err
            raise
        version, status, _ = (status_line.decode("latin-1").rstrip() + " ").split(" ", 2)
        if not version.startswith("HTTP/1.") or not status.isdigit():
            raise BadResponse(f"status line {status_line[:80]!r}")
        headers = await _headers(reader)
        body = await _body(reader, headers)
        if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            self.close()
        return int(status), body


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size + 2)
            if len(body) > MAX_BODY:
                raise BadResponse("body too long")
        await _headers(reader)  # trailers
        return body
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise BadResponse("body too long")
        return await reader.readexactly(length)
    return await reader.read(MAX_BODY)


def failure_reason(err: BaseException) -> str:
    """A short name for what went wrong with a request or a connection attempt."""
    if isinstance(err, TimeoutError):
        return "timeout"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(err, asyncio.IncompleteReadError):
        return "connection closed"
    if isinstance(err, BadResponse | ValueError):
        return "bad response"
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return type(err).__name__


def color_of(body: bytes) -> str:
    """The ``color`` of a ``{"color": ..., "version": ...}`` body; ``unknown`` otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        return "unknown"
    color = data.get("color") if isinstance(data, dict) else None
    return color if isinstance(color, str) and color else "unknown"


class HttpLoad:
    """Requests paced at ``requests_per_second`` until ``max_requests`` or the stop."""

    def __init__(self, settings: LoadSettings, tally: Tally) -> None:
        self.settings = settings
        self.tally = tally
        self.path = settings.base_path + "/version"
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(settings.connections):
            self._idle.put_nowait(Connection(settings.host, settings.port))

    async def run(self, stopping: asyncio.Event) -> None:
        """Send on schedule (request k at start + k / rate) until done or ``stopping``; then
        wait for the requests in flight (each bounded by TIMEOUT)."""
        loop = asyncio.get_running_loop()
        rate, limit = self.settings.requests_per_second, self.settings.max_requests
        start = loop.time()
        in_flight: set[asyncio.Task[None]] = set()
        number = 0
        try:
            while limit is None or number < limit:
                delay = start + number / rate - loop.time()
                if delay > 0 and await wait_or_stop(stopping, delay):
                    break
                if stopping.is_set():
                    break
                task = asyncio.create_task(self._one())
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                number += 1
            if in_flight:
                await asyncio.wait(in_flight, timeout=2 * TIMEOUT)
        finally:
            for task in in_flight:
                task.cancel()
            while not self._idle.empty():
                self._idle.get_nowait().close()

    async def _one(self) -> None:
        try:
            connection = await asyncio.wait_for(self._idle.get(), TIMEOUT)
        except TimeoutError:
            self.tally.request_failed("no free connection within 5s")
            return
        try:
            async with asyncio.timeout(TIMEOUT):
                status, body = await connection.get(self.path)
        except Exception as err:
            self.tally.request_failed(failure_reason(err))
        else:
            if 200 <= status < 300:
                self.tally.answered(color_of(body))
            else:
                self.tally.request_failed(f"HTTP {status}")
        finally:
            self._idle.put_nowait(connection)


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less if ``stopping`` is set meanwhile: whether it was."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return False
    return True
