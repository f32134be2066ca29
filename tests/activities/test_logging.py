"""The activities' log lines against moto: deployment, region, step and AWS's request ID."""

import dataclasses
import logging
import re

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ecs import register_task_definition
from activities.logs import LogfmtFormatter, fields
from activities.ssm import read_color_state
from models.activities import RegisterTaskDefinitionInput, SsmInput
from tests.activities.aws_resources import REGION, unique

DEPLOYMENT = "deploy-game-prod"


@pytest.fixture
def env(env: ActivityEnvironment) -> ActivityEnvironment:
    """As the worker runs an activity of deployment deploy-game-prod, second attempt."""
    env.info = dataclasses.replace(
        env.info, workflow_id=DEPLOYMENT, activity_type="read_color_state", attempt=2
    )
    return env


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What ``activity.logger`` logs (INFO and up)."""
    caplog.set_level(logging.INFO, logger=activity.logger.base_logger.name)
    return caplog


def one(logged: pytest.LogCaptureFixture, step: str) -> logging.LogRecord:
    """The one record of an AWS call ``step``."""
    (record,) = [r for r in logged.records if getattr(r, "step", None) == step]
    return record


def line(record: logging.LogRecord) -> str:
    """The record as the worker prints it."""
    return LogfmtFormatter().format(record)


def test_a_call_logs_its_region_step_and_request_id(
    env: ActivityEnvironment, prefix: str, logged: pytest.LogCaptureFixture
) -> None:
    env.run(read_color_state, SsmInput(region=REGION, ssm_prefix=prefix))

    record = one(logged, "ssm.GetParameters")
    assert record.levelno == logging.INFO
    about = fields(record)
    assert re.fullmatch(r"[\w-]{8,}", about.pop("request_id"))
    assert about == {
        "deployment": DEPLOYMENT,
        "region": REGION,
        "step": "ssm.GetParameters",
        "status": 200,
        "activity": "read_color_state",
        "attempt": 2,
    }
    assert re.search(
        r"INFO temporalio\.activity: ssm\.GetParameters: HTTP 200"
        r"(?: \(.*\))? deployment=deploy-game-prod region=us-west-2 step=ssm\.GetParameters"
        r" request_id=[\w-]+ status=200 activity=read_color_state attempt=2$",
        line(record),
    ), line(record)


def test_an_aws_error_logs_its_code_and_request_id(
    env: ActivityEnvironment, logged: pytest.LogCaptureFixture
) -> None:
    missing = RegisterTaskDefinitionInput(
        region=REGION, task_family=unique("none"), container_name="game", image="game:2"
    )
    with pytest.raises(ApplicationError):
        env.run(register_task_definition, missing)

    record = one(logged, "ecs.DescribeTaskDefinition")
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("ecs.DescribeTaskDefinition failed: ClientException")
    about = fields(record)
    assert about["error"] == "ClientException"
    assert about["status"] == 400
    assert about["request_id"]
    assert about["region"] == REGION


def test_no_answer_logs_the_connection_error(
    env: ActivityEnvironment, logged: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    with pytest.raises(ApplicationError, match="EndpointConnectionError"):
        env.run(read_color_state, SsmInput(region="eu-west-1", ssm_prefix="/game/prod"))

    record = one(logged, "ssm.GetParameters")
    assert record.levelno == logging.WARNING
    about = fields(record)
    assert about["error"] == "EndpointConnectionError"
    assert about["region"] == "eu-west-1"
    assert "request_id" not in about


def test_workflow_records_name_the_deployment_and_the_workflow() -> None:
    record = logging.LogRecord("temporalio.workflow", logging.INFO, __file__, 1, "phase", (), None)
    record.temporal_workflow = {
        "workflow_id": "deploy-game-prod-us-east-1",
        "workflow_type": "BlueGreenDeployment",
        "run_id": "r",
    }
    assert line(record).endswith(
        "INFO temporalio.workflow: phase"
        " deployment=deploy-game-prod-us-east-1 workflow=BlueGreenDeployment"
    )


def test_values_with_spaces_or_quotes_are_quoted() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "m", (), None)
    record.step = "ecs.UpdateService"
    record.error = 'a "quoted" error'
    assert line(record).endswith(r'step=ecs.UpdateService error="a \"quoted\" error"')


def test_other_records_stay_as_they_were() -> None:
    record = logging.LogRecord("worker", logging.INFO, __file__, 1, "worker stopped", (), None)
    assert line(record).endswith(" INFO worker: worker stopped")
