"""What a load run does: the settings, from the command line or from Python."""

import argparse
import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

LOOPBACK_NAMES = frozenset({"localhost"})


class LoadSettings(BaseModel):
    """One run's settings; each field is the command-line option of the same name
    (``game_seconds``: ``--game-seconds``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    url: str
    """``http://HOST:PORT`` on this machine: requests go to ``URL/version``, players to
    ``ws://HOST:PORT/play``."""
    seconds: float = Field(gt=0, le=24 * 3600)
    """The longest the run lasts; it stops sooner on SIGINT or SIGTERM, or once it has nothing
    left to do (requests done, players gone)."""
    players: int = Field(default=0, ge=0, le=1000)
    game_seconds: float = Field(default=2, gt=0, le=3600)
    """The length of one game."""
    move_interval: float = Field(default=0.25, ge=0.01, le=60)
    """Seconds between two moves of a game."""
    requests_per_second: float = Field(default=0, ge=0, le=2000)
    max_requests: int | None = Field(default=None, ge=0)
    """HTTP stops after this many requests; no limit but ``seconds`` when None."""
    connections: int = Field(default=4, ge=1, le=64)
    """Keep-alive HTTP connections the requests share."""
    version: str | None = Field(default=None, min_length=1, pattern=r"^[!-~]+$")
    """The players' client version (the ``X-Game-Version`` header); none by default."""
    on_notice: Literal["reconnect", "leave"] = "reconnect"
    """What a player told to reconnect does once its game is done: reconnect at once, or
    leave for good (what players do while nothing routes them to another color)."""
    result: Path | None = None
    """Where the result is written as JSON at the end."""
    ready: Path | None = None
    """Touched once every player got its first welcome."""

    @field_validator("url")
    @classmethod
    def _loopback_http(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"{url!r} is not an http:// URL")
        if not parts.hostname:
            raise ValueError(f"{url!r} names no host")
        if not is_loopback(parts.hostname):
            raise ValueError(
                f"host {parts.hostname!r} is not this machine's loopback"
                " (127.0.0.0/8, ::1, localhost): the load generator runs locally only"
            )
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as err:
            raise ValueError(f"{url!r}: {err}") from err
        return url.rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    @property
    def base_path(self) -> str:
        """The URL's path, without a trailing slash: ``""`` for ``http://127.0.0.1:8080``."""
        return urlsplit(self.url).path.rstrip("/")

    @property
    def play_url(self) -> str:
        """Where players connect: ``ws://HOST:PORT[/path]/play``."""
        return "ws" + self.url.removeprefix("http") + "/play"

    def to_args(self) -> list[str]:
        """The command line of ``python -m local.load`` for these settings."""
        args = ["--url", self.url, "--seconds", str(self.seconds)]
        for name, value in self.model_dump(exclude={"url", "seconds"}).items():
            if value is not None and value != LoadSettings.model_fields[name].default:
                args += [f"--{name.replace('_', '-')}", str(value)]
        return args


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(ValueError):
    """A bad option, as one line naming it."""


def parse_args(argv: list[str] | None = None) -> LoadSettings:
    """The settings of ``python -m local.load ARGS``; SettingsError names the bad option."""
    parser = argparse.ArgumentParser(
        prog="python -m local.load",
        description="HTTP requests and WebSocket players against a local game URL; bounded"
        " by --seconds, stopped early by SIGINT or SIGTERM.",
    )
    fields = LoadSettings.model_fields
    for name, field in fields.items():
        required = field.is_required()
        shown = "" if required or field.default is None else f" (default: {field.default})"
        text = f"{field.description or name}{shown}".replace("%", "%%")
        parser.add_argument(f"--{name.replace('_', '-')}", required=required, help=text)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    try:
        return LoadSettings.model_validate(given)
    except ValidationError as err:
        first = err.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "input"
        raise SettingsError(f"{option}: {first['msg'].removeprefix('Value error, ')}") from err
