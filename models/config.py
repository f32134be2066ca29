"""The deployment configuration file (``deploy.toml``): one section per environment.

The file is read by ``client.py`` only; the workflow receives the environment it deploys to as
part of its request, so workflow code never reads files.
"""

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from models.analysis import AnalysisConfig
from models.colors import Color
from models.durations import Duration
from models.errors import ConfigError, one_line
from models.notifications import SHARED_KEYS, NotifyTargets
from models.strict import StrictModel
from models.traffic import TrafficConfig

# Where the worker reaches a color or an endpoint. ``{color_url}`` stands for the ``url`` of the
# color the request is about (the new color for checks, the old one for connections).
COLOR_URL = "{color_url}"
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


def check_region(value: str) -> str:
    """An AWS region name such as us-west-2."""
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name such as us-west-2")
    return value


Region = Annotated[str, AfterValidator(check_region)]

# Keys that say which regions there are; the per-region overrides may not change them.
_REGION_KEYS = ("region", "regions", "waves", "in_region")


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top; nested tables merge, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def check_url_template(value: str) -> str:
    """A URL (or ``{color_url}/path`` template) the worker calls over HTTP."""
    if not (value.startswith(("http://", "https://", COLOR_URL))):
        raise ValueError(f"{value!r} must start with http://, https:// or {COLOR_URL}")
    if any(c.isspace() for c in value):
        raise ValueError(f"{value!r} must not contain spaces")
    return value


def expand_url(template: str, color_url: str | None) -> str:
    """``{color_url}/health`` with a color's base URL in place; a plain URL stays as it is.

    >>> expand_url("{color_url}/health", "http://10.0.1.5:8080")
    'http://10.0.1.5:8080/health'

    Raises ValueError when ``template`` needs a color URL and ``color_url`` is None.
    """
    if COLOR_URL not in template:
        return template
    if color_url is None:
        raise ValueError(f"{template!r} uses {COLOR_URL} but the color has no url configured")
    return template.replace(COLOR_URL, color_url.rstrip("/"))


class ColorConfig(StrictModel):
    """One color: its own ECS service in its own cluster."""

    cluster: str = Field(min_length=1)
    service: str = Field(min_length=1)
    target_group_arn: str | None = None
    """ALB target group of this color: its targets must be healthy; the ALB router weights it."""
    virtual_node: str | None = None
    """App Mesh virtual node of this color (App Mesh router only)."""
    url: str | None = None
    """Base URL where the worker reaches this color directly, without public traffic."""

    @field_validator("url")
    @classmethod
    def _plain_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        return value.rstrip("/")


class AlbRouter(StrictModel):
    """An ALB listener forwarding to the two colors' target groups with weights."""

    kind: Literal["alb"]
    listener_arn: str = Field(min_length=1)
    rule_arn: str | None = None
    """Weight this listener rule's forward action instead of the listener's default action."""


class AppMeshRouter(StrictModel):
    """An App Mesh route whose weighted targets are the two colors' virtual nodes."""

    kind: Literal["app_mesh"]
    mesh_name: str = Field(min_length=1)
    virtual_router_name: str = Field(min_length=1)
    route_name: str = Field(min_length=1)


RouterConfig = Annotated[AlbRouter | AppMeshRouter, Field(discriminator="kind")]


class WaitConfig(StrictModel):
    """A wait loop: check, sleep ``poll_interval`` (a durable timer), check … until ``timeout``."""

    timeout: Duration
    poll_interval: Duration

    @model_validator(mode="after")
    def _positive_and_ordered(self) -> Self:
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be greater than zero")
        if self.poll_interval <= timedelta(0):
            raise ValueError("poll_interval must be greater than zero")
        if self.poll_interval > self.timeout:
            raise ValueError("poll_interval must not be longer than timeout")
        return self


class ConnectionsConfig(StrictModel):
    """How to count the old color's connected clients and tell them to reconnect."""

    url: str
    """GET, with the old version in ``version_header``; answers the number of connected clients."""
    version_header: str = Field(default="X-Service-Version", pattern=r"^[A-Za-z0-9-]+$")
    notify_url: str | None = None
    """POST, with the old version in ``version_header``: reconnect once your game is done."""

    @field_validator("url", "notify_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else check_url_template(value)


class ApprovalConfig(StrictModel):
    """How long a deployment that requires approval waits for it, what happens then, and who
    may give it."""

    timeout: Duration = timedelta(hours=24)
    on_timeout: Literal["abort", "proceed"] = "abort"
    """abort: scale the new color back to zero and fail; proceed: switch as if approved."""
    require_different_approver: StrictBool = False
    """Four eyes: refuse an approval from whoever started the deployment (its ``requested_by``),
    and one that does not say who gives it."""

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("timeout must be greater than zero")
        return value


class BakeConfig(StrictModel):
    """After the switch, both colors run for ``duration`` while ``alarms`` are watched."""

    duration: Duration = timedelta(minutes=5)
    """0s skips the bake: drain and cleanup start right after the switch."""
    poll_interval: Duration = timedelta(seconds=15)
    alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list)
    """CloudWatch alarm names in the environment's region; any in ALARM rolls back."""

    @model_validator(mode="after")
    def _durations_and_alarms(self) -> Self:
        if self.duration < timedelta(0):
            raise ValueError("duration must not be negative")
        if self.poll_interval <= timedelta(0):
            raise ValueError("poll_interval must be greater than zero")
        if self.alarms and self.duration == timedelta(0):
            raise ValueError("alarms need a bake duration greater than zero to be watched")
        repeated = sorted({a for a in self.alarms if self.alarms.count(a) > 1})
        if repeated:
            raise ValueError(f"alarms lists {', '.join(repeated)} more than once")
        return self


class IntegrationCheck(StrictModel):
    """One HTTP request against the new color while it has no public traffic."""

    name: str = Field(min_length=1)
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expected_status: int = Field(default=200, ge=100, le=599)
    body_contains: str | None = None
    timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url_template(value)

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        # Else the check would fail only in testing, after the new color was deployed.
        if value <= timedelta(0):
            raise ValueError("timeout must be greater than zero")
        return value


class EnvironmentConfig(StrictModel):
    """One environment (prod, staging, …): a pair of colors and a router, in one or more regions.

    The keys describe the resources in ``region``. With ``regions`` or ``waves`` the environment
    spans several regions; ``in_region`` gives, per region, only what differs there.
    """

    region: Region
    regions: list[Region] = Field(default_factory=list)
    """Several regions, deployed in parallel (one wave)."""
    waves: list[list[Region]] = Field(default_factory=list)
    """Regions in ordered waves: a wave starts only after the previous one passed its bake."""
    in_region: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Region → the keys whose values differ there (ARNs, names, URLs), as nested tables."""
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    """SSM parameters live under this path; see docs/configuration.md, "SSM parameters"."""
    task_family: str = Field(min_length=1)
    container_name: str = Field(min_length=1)
    desired_count: int = Field(default=1, ge=1)
    blue: ColorConfig
    green: ColorConfig
    router: RouterConfig
    health: WaitConfig = WaitConfig(
        timeout=timedelta(minutes=15), poll_interval=timedelta(seconds=15)
    )
    drain: WaitConfig = WaitConfig(timeout=timedelta(hours=2), poll_interval=timedelta(seconds=30))
    approval: ApprovalConfig = ApprovalConfig()
    bake: BakeConfig = BakeConfig()
    connections: ConnectionsConfig | None = None
    """Without it there is nothing to drain: the old color is shut down right after the switch."""
    integration_checks: list[IntegrationCheck] = Field(default_factory=list)
    traffic: TrafficConfig = TrafficConfig()
    """How the traffic moves to the new color: all at once (the default) or in steps."""
    analysis: AnalysisConfig = AnalysisConfig()
    """Metrics that judge the new version while it gets traffic (models/analysis.py)."""
    notify: NotifyTargets = Field(default_factory=list)
    """Who hears of approvals, switches and ends, and where (models/notifications.py)."""

    @model_validator(mode="after")
    def _router_needs(self) -> Self:
        for name in ("blue", "green"):
            color: ColorConfig = getattr(self, name)
            if self.router.kind == "alb" and not color.target_group_arn:
                raise ValueError(f"{name}.target_group_arn is required with the alb router")
            if self.router.kind == "app_mesh" and not color.virtual_node:
                raise ValueError(f"{name}.virtual_node is required with the app_mesh router")
        uses_color_url = [c.url for c in self.integration_checks] + (
            [self.connections.url, self.connections.notify_url or ""] if self.connections else []
        )
        if any(COLOR_URL in u for u in uses_color_url) and not (self.blue.url and self.green.url):
            raise ValueError(f"blue.url and green.url are required where a URL uses {COLOR_URL}")
        self.analysis.check_environment(self)
        return self

    @model_validator(mode="after")
    def _regions_and_overrides(self) -> Self:
        if self.regions and self.waves:
            raise ValueError("give regions or waves, not both")
        if any(not wave for wave in self.waves):
            raise ValueError("waves: a wave needs at least one region")
        listed = self.all_regions()
        if self.region not in listed:
            raise ValueError(
                f"region {self.region} (whose resources the keys describe) must be one of the"
                f" regions deployed to ({', '.join(listed)})"
            )
        repeated = sorted({r for r in listed if listed.count(r) > 1})
        if repeated:
            raise ValueError(f"region {', '.join(repeated)} is listed more than once")
        for region, override in self.in_region.items():
            if region not in listed:
                raise ValueError(
                    f"in_region.{region}: not one of this environment's regions"
                    f" ({', '.join(listed)})"
                )
            fixed = [key for key in (*_REGION_KEYS, *SHARED_KEYS) if key in override]
            if fixed:
                raise ValueError(f"in_region.{region}: {fixed[0]} cannot differ per region")
            try:
                self.for_region(region)
            except ValidationError as err:
                raise ValueError(f"in_region.{region}.{one_line(err)}") from None
        return self

    def color(self, color: Color) -> ColorConfig:
        """The configuration of one color."""
        return self.blue if color == "blue" else self.green

    def wave_list(self) -> list[list[str]]:
        """The regions in the order they are deployed: waves, one after the other."""
        return self.waves or [self.regions or [self.region]]

    def all_regions(self) -> list[str]:
        """Every region of the environment, wave by wave."""
        return [region for wave in self.wave_list() for region in wave]

    def for_region(self, region: str) -> "EnvironmentConfig":
        """This environment as one region sees it: its overrides applied, a single region."""
        if region == self.region and not self.in_region.get(region) and self.is_single_region():
            return self
        base = self.model_dump(exclude=set(_REGION_KEYS))
        return EnvironmentConfig.model_validate(
            _merged(base, self.in_region.get(region, {})) | {"region": region}
        )

    def is_single_region(self) -> bool:
        """True when the environment lists no regions besides ``region``."""
        return not self.regions and not self.waves

    def selected_waves(self, chosen: list[str]) -> list[list[str]]:
        """The waves restricted to ``chosen`` (``--region``), or all of them when none is."""
        if not chosen:
            return self.wave_list()
        listed = self.all_regions()
        for region in chosen:
            if chosen.count(region) > 1:
                raise ConfigError(f"--region: {region} is given more than once")
            if region not in listed:
                raise ConfigError(
                    f"--region: {region!r} is not a region of this environment"
                    f" ({', '.join(listed)})"
                )
        waves = [[r for r in wave if r in chosen] for wave in self.wave_list()]
        return [wave for wave in waves if wave]


class DeployConfig(StrictModel):
    """The whole file: the service and its environments."""

    service: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)

    def environment(self, name: str) -> EnvironmentConfig:
        """One environment by name, or a ConfigError listing the ones there are."""
        if name not in self.environments:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"--environment: {name!r} is not in the config file (known: {known})")
        return self.environments[name]


def load_config(path: str | Path) -> DeployConfig:
    """Read and validate a deploy.toml; any problem is one ConfigError line naming the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config: cannot read {path}: {err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: {one_line(err, data)}") from None
