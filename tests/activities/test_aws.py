"""How AWS errors become Temporal errors, and how clients are made."""

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from temporalio.exceptions import ApplicationError

from activities.aws import THROTTLING_CODES, aws_call, aws_client


def client_error(code: str, status: int, message: str = "AWS says no") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "UpdateService")


def raised_in_aws_call(err: Exception) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught, aws_call("ecs.UpdateService"):
        raise err
    return caught.value


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("Throttling", 400),
        ("TooManyUpdates", 400),
        ("RequestLimitExceeded", 503),
        ("TooManyRequestsException", 429),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
        ("ServerException", 500),
    ],
)
def test_throttling_and_server_errors_are_retried(code: str, status: int) -> None:
    err = raised_in_aws_call(client_error(code, status))

    assert not err.non_retryable
    assert err.type == code
    assert err.message == f"ecs.UpdateService: {code}: AWS says no"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 400),
        ("AccessDenied", 403),
        ("ClusterNotFoundException", 400),
        ("ParameterNotFound", 400),
        ("ValidationException", 400),
        ("InvalidParameterException", 400),
        ("ClientException", 400),
    ],
)
def test_request_errors_are_not_retried(code: str, status: int) -> None:
    err = raised_in_aws_call(client_error(code, status, "Cluster not found."))

    assert err.non_retryable
    assert err.type == code
    assert err.message == f"ecs.UpdateService: {code}: Cluster not found."
    assert isinstance(err.__cause__, ClientError)


def test_every_throttling_code_is_retried() -> None:
    for code in THROTTLING_CODES:
        assert not raised_in_aws_call(client_error(code, 400)).non_retryable


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://ecs.us-west-2.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://ecs.us-west-2.amazonaws.com"),
    ],
)
def test_connection_errors_are_retried(error: Exception) -> None:
    err = raised_in_aws_call(error)

    assert not err.non_retryable
    assert err.type == type(error).__name__
    assert "https://ecs.us-west-2.amazonaws.com" in err.message


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (NoCredentialsError(), "give the worker AWS credentials"),
        (ParamValidationError(report="Invalid type for parameter desiredCount"), "desiredCount"),
    ],
)
def test_setup_errors_are_not_retried(error: Exception, hint: str) -> None:
    err = raised_in_aws_call(error)

    assert err.non_retryable
    assert err.type == type(error).__name__
    assert hint in err.message


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), aws_call("ecs.UpdateService"):
        raise KeyError("not botocore's")


def test_clients_are_cached_single_attempt_and_use_the_standard_endpoint(
    aws: dict[str, str],
) -> None:
    ecs = aws_client("ecs", "us-west-2")

    assert aws_client("ecs", "us-west-2") is ecs
    assert aws_client("ecs", "eu-west-1") is not ecs
    assert ecs.meta.endpoint_url == aws["AWS_ENDPOINT_URL"]
    config: Any = ecs.meta.config
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert "bluegreen-deployments" in config.user_agent_extra
