"""SSM activities against moto: the color state shared with Terraform."""

from typing import TYPE_CHECKING

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ssm import (
    parameter_name,
    read_color_state,
    require_inactive,
    set_active_color,
    set_color_version,
)
from models.activities import ServiceRef, SetActiveColorInput, SetColorVersionInput, SsmInput
from models.colors import Color
from models.observations import ColorState
from tests.activities.aws_resources import REGION, unique

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def state(env: ActivityEnvironment, prefix: str) -> ColorState:
    return env.run(read_color_state, SsmInput(region=REGION, ssm_prefix=prefix))


def test_parameter_names() -> None:
    assert parameter_name("/game/prod", "current_active_color") == "/game/prod/current_active_color"
    assert parameter_name("/game/prod/", "blue", "version") == "/game/prod/blue/version"


def test_reads_the_active_color_and_versions(env: ActivityEnvironment, prefix: str) -> None:
    assert state(env, prefix) == ColorState(
        active_color="blue", versions={"blue": "1", "green": None}
    )


def test_sets_the_active_color(env: ActivityEnvironment, prefix: str) -> None:
    request = SetActiveColorInput(region=REGION, ssm_prefix=prefix, color="green")
    env.run(set_active_color, request)
    env.run(set_active_color, request)

    assert state(env, prefix).active_color == "green"


def test_sets_and_deletes_a_version(
    env: ActivityEnvironment, prefix: str, ssm: "SSMClient"
) -> None:
    def set_green(version: str | None) -> None:
        env.run(
            set_color_version,
            SetColorVersionInput(region=REGION, ssm_prefix=prefix, color="green", version=version),
        )

    set_green("2")
    assert state(env, prefix).versions == {"blue": "1", "green": "2"}
    assert ssm.get_parameter(Name=f"{prefix}/green/version")["Parameter"]["Type"] == "String"

    set_green(None)
    set_green(None)  # a retry after the delete: nothing left to delete, still done
    assert state(env, prefix).versions == {"blue": "1", "green": None}


def test_a_missing_active_color_is_not_retried(
    env: ActivityEnvironment, aws: dict[str, str]
) -> None:
    prefix = f"/{unique('game')}/prod"
    with pytest.raises(ApplicationError) as caught:
        state(env, prefix)

    assert caught.value.non_retryable
    assert caught.value.type == "ParameterNotFound"
    assert f"{prefix}/current_active_color does not exist" in caught.value.message


def test_an_invalid_active_color_is_not_retried(
    env: ActivityEnvironment, prefix: str, ssm: "SSMClient"
) -> None:
    ssm.put_parameter(
        Name=f"{prefix}/current_active_color", Value="purple", Type="String", Overwrite=True
    )
    with pytest.raises(ApplicationError) as caught:
        state(env, prefix)

    assert caught.value.non_retryable
    assert caught.value.message == (
        f"ssm: {prefix}/current_active_color is 'purple', expected 'blue' or 'green'"
    )


@pytest.mark.parametrize(("color", "refused"), [("blue", True), ("green", False)])
def test_require_inactive(prefix: str, color: Color, refused: bool) -> None:
    ref = ServiceRef(region=REGION, ssm_prefix=prefix, color=color, cluster="c", service="s")
    if not refused:
        require_inactive(ref)
        return
    with pytest.raises(ApplicationError, match=r"refusing to change blue \(c/s\)") as caught:
        require_inactive(ref)
    assert caught.value.non_retryable
