"""SSM Parameter Store: the active color and each color's version, shared with Terraform.

Parameters (``<prefix>`` is the environment's ``ssm_prefix``, e.g. ``/game/prod``)::

    <prefix>/current_active_color   blue | green
    <prefix>/<color>/version        the version the color runs; absent: none recorded
"""

from contextlib import suppress

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws import aws_call, aws_client
from models.activities import ServiceRef, SetActiveColorInput, SetColorVersionInput, SsmInput
from models.colors import COLORS, Color
from models.observations import ColorState

ACTIVE_COLOR = "current_active_color"
VERSION = "version"


def parameter_name(prefix: str, *path: str) -> str:
    """The name of a parameter under ``prefix``: ``("/game/prod", "blue", VERSION)`` →
    ``/game/prod/blue/version``."""
    return "/".join((prefix.rstrip("/"), *path))


def _get_parameters(region: str, names: list[str]) -> dict[str, str]:
    """The values of those of ``names`` that exist, in one call."""
    with aws_call("ssm.GetParameters"):
        answer = aws_client("ssm", region).get_parameters(Names=names)
    return {p["Name"]: p["Value"] for p in answer["Parameters"]}


def _active_color(prefix: str, values: dict[str, str]) -> Color:
    name = parameter_name(prefix, ACTIVE_COLOR)
    value = values.get(name)
    if value is None:
        raise ApplicationError(
            f"ssm: {name} does not exist: create it with the active color (blue or green)",
            type="ParameterNotFound",
            non_retryable=True,
        )
    for color in COLORS:
        if value == color:
            return color
    raise ApplicationError(
        f"ssm: {name} is {value!r}, expected 'blue' or 'green'",
        type="InvalidActiveColor",
        non_retryable=True,
    )


@activity.defn
def read_color_state(arg: SsmInput) -> ColorState:
    """The active color and both colors' versions."""
    versions = {color: parameter_name(arg.ssm_prefix, color, VERSION) for color in COLORS}
    values = _get_parameters(
        arg.region, [parameter_name(arg.ssm_prefix, ACTIVE_COLOR), *versions.values()]
    )
    return ColorState(
        active_color=_active_color(arg.ssm_prefix, values),
        versions={color: values.get(name) for color, name in versions.items()},
    )


@activity.defn
def set_active_color(arg: SetActiveColorInput) -> None:
    """Record ``color`` as the active color."""
    _put(arg.region, parameter_name(arg.ssm_prefix, ACTIVE_COLOR), arg.color)


@activity.defn
def set_color_version(arg: SetColorVersionInput) -> None:
    """Record the version ``color`` runs; None deletes the record (idempotently)."""
    name = parameter_name(arg.ssm_prefix, arg.color, VERSION)
    if arg.version is not None:
        _put(arg.region, name, arg.version)
        return
    client = aws_client("ssm", arg.region)
    # Already gone is done: a retry after the delete went through.
    with aws_call("ssm.DeleteParameter"), suppress(client.exceptions.ParameterNotFound):
        client.delete_parameter(Name=name)


def _put(region: str, name: str, value: str) -> None:
    with aws_call("ssm.PutParameter"):
        aws_client("ssm", region).put_parameter(
            Name=name, Value=value, Type="String", Overwrite=True
        )


def require_inactive(ref: ServiceRef) -> None:
    """Refuse (non-retryable) to go on when ``ref.color`` is the active color.

    Production is never scaled down or redeployed by this worker, whatever a workflow asks.
    """
    values = _get_parameters(ref.region, [parameter_name(ref.ssm_prefix, ACTIVE_COLOR)])
    if _active_color(ref.ssm_prefix, values) == ref.color:
        raise ApplicationError(
            f"refusing to change {ref.color} ({ref.cluster}/{ref.service}): it is the active"
            f" color per {parameter_name(ref.ssm_prefix, ACTIVE_COLOR)}",
            type="ActiveColorProtected",
            non_retryable=True,
        )
