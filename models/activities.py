"""Inputs of the activities: one model each, so an activity's signature can grow compatibly."""

from datetime import timedelta

from pydantic import BaseModel

from models.colors import Color
from models.config import ColorConfig, IntegrationCheck, RouterConfig
from models.observations import RouterWeights


class SsmInput(BaseModel):
    """Where a pair of colors keeps its state in SSM Parameter Store."""

    region: str
    ssm_prefix: str


class SetActiveColorInput(SsmInput):
    color: Color


class SetColorVersionInput(SsmInput):
    color: Color
    version: str | None
    """None deletes the parameter: the color had no version recorded before."""


class RegisterTaskDefinitionInput(BaseModel):
    """The family's latest revision with ``image`` in ``container_name``."""

    region: str
    task_family: str
    container_name: str
    image: str


class ServiceRef(BaseModel):
    """One color's ECS service, and the SSM prefix that says whether that color is active."""

    region: str
    ssm_prefix: str
    color: Color
    cluster: str
    service: str

    @classmethod
    def of(cls, region: str, ssm_prefix: str, color: Color, config: ColorConfig) -> "ServiceRef":
        return cls(
            region=region,
            ssm_prefix=ssm_prefix,
            color=color,
            cluster=config.cluster,
            service=config.service,
        )


class UpdateServiceInput(BaseModel):
    """Point an inactive color's service at a task definition with a desired count."""

    target: ServiceRef
    task_definition_arn: str
    desired_count: int


class ScaleToZeroInput(BaseModel):
    """Scale an inactive color's service to zero tasks."""

    target: ServiceRef
    task_definition_arn: str | None = None
    """Also point the service back at this task definition (what it ran before a deployment
    that failed); None leaves its task definition as it is."""


class ReadTaskDefinitionInput(BaseModel):
    """Read which task definition a color's service runs."""

    target: ServiceRef


class CheckHealthInput(BaseModel):
    target: ServiceRef
    target_group_arn: str | None = None


class RouterInput(BaseModel):
    """The router of a pair, with both colors' configuration (target groups or virtual nodes)."""

    region: str
    router: RouterConfig
    blue: ColorConfig
    green: ColorConfig


class SwitchTrafficInput(RouterInput):
    to_color: Color


class SetWeightsInput(RouterInput):
    """A traffic step: the split to set."""

    weights: RouterWeights


class ConnectionsInput(BaseModel):
    """Count (GET ``url``) or notify (POST ``url``) the clients of ``version``."""

    url: str
    version_header: str
    version: str
    timeout: timedelta = timedelta(seconds=10)
    remind_url: str | None = None
    """Counting only: POST here too while clients are left (the reconnect notice again)."""


class IntegrationChecksInput(BaseModel):
    checks: list[IntegrationCheck]
    color_url: str | None


class AlarmsInput(BaseModel):
    """CloudWatch alarms to read, by name, in one region."""

    region: str
    alarm_names: list[str]
