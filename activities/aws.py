"""boto3 clients for the activities, and the one place AWS errors become Temporal errors.

Retrying is Temporal's job: botocore makes exactly one attempt, and ``aws_call`` tells Temporal
whether another attempt can help. Each retry then shows in the UI, with backoff from the
workflow's retry policy, instead of hiding inside one long activity attempt.

Endpoints come from the standard environment (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_<SERVICE>``) that boto3 reads itself; that is how the local environment and
the tests point the same code at moto.

Every call is logged (``activities/logs.py``): deployment, region, operation, AWS's request ID.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from temporalio.exceptions import ApplicationError

from activities.logs import watch_calls

if TYPE_CHECKING:
    from mypy_boto3_appmesh import AppMeshClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_ssm import SSMClient

CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="bluegreen-deployments",
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "PriorRequestNotComplete",
        # SSM PutParameter while another writer (Terraform, say) updates the same parameter.
        "TooManyUpdates",
    }
)
"""Error codes that mean "not now": AWS answers them with 400 as often as with 429 or 503."""

# Errors that no retry fixes: the worker's own setup or a bug in the request.
_SETUP_ERRORS: dict[type[BotoCoreError], str] = {
    NoCredentialsError: "give the worker AWS credentials (an IAM role, AWS_PROFILE, …)",
    PartialCredentialsError: "the worker's AWS credentials are incomplete",
    NoRegionError: "no AWS region configured for this call",
    ParamValidationError: "the request does not match the AWS API",
}


@overload
def aws_client(service_name: Literal["ecs"], region: str) -> "ECSClient": ...
@overload
def aws_client(service_name: Literal["ssm"], region: str) -> "SSMClient": ...
@overload
def aws_client(service_name: Literal["elbv2"], region: str) -> "ElasticLoadBalancingv2Client": ...
@overload
def aws_client(service_name: Literal["appmesh"], region: str) -> "AppMeshClient": ...
@overload
def aws_client(service_name: Literal["cloudwatch"], region: str) -> "CloudWatchClient": ...
def aws_client(service_name: str, region: str) -> Any:
    """The worker's one client for ``service_name`` in ``region`` (boto3 clients are thread-safe)."""
    # The endpoint variables are part of the key: a client keeps the endpoint it was made with.
    endpoints = (
        os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get(f"AWS_ENDPOINT_URL_{service_name.upper()}"),
    )
    return _cached_client(service_name, region, endpoints)


@lru_cache(maxsize=64)
def _cached_client(service_name: str, region: str, endpoints: tuple[str | None, ...]) -> Any:
    # A session of its own: boto3's default session is not safe to create clients from in
    # several activity threads at once.
    session = boto3.session.Session()
    client = session.client(service_name, region_name=region, config=CLIENT_CONFIG)  # type: ignore[call-overload]
    watch_calls(client, service_name, region)  # a log line per call, with AWS's request ID
    return client


def is_retryable(err: ClientError) -> bool:
    """Whether AWS said "try again later" (throttling, 5xx) rather than "this request is wrong"."""
    code = err.response.get("Error", {}).get("Code", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in THROTTLING_CODES or status >= 500 or status == 429


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Turn botocore errors raised inside into ApplicationErrors that say whether to retry::

        with aws_call("ecs.UpdateService"):
            ecs.update_service(cluster="game-prod-green", service="game", desiredCount=2)

    A ClusterNotFoundException becomes a non-retryable
    ``ApplicationError("ecs.UpdateService: ClusterNotFoundException: Cluster not found.")``;
    throttling, 5xx answers and connection errors become retryable ones.
    """
    try:
        yield
    except ClientError as err:
        error = err.response.get("Error", {})
        code = error.get("Code") or "ClientError"
        message = error.get("Message") or str(err)
        raise ApplicationError(
            f"{operation}: {code}: {message}", type=code, non_retryable=not is_retryable(err)
        ) from err
    except (BotoConnectionError, HTTPClientError) as err:
        # EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError…
        name = type(err).__name__
        raise ApplicationError(f"{operation}: {name}: {err}", type=name) from err
    except tuple(_SETUP_ERRORS) as err:
        name = type(err).__name__
        hint = _SETUP_ERRORS.get(type(err), "cannot call AWS")
        raise ApplicationError(
            f"{operation}: {name}: {hint}: {err}", type=name, non_retryable=True
        ) from err
    except BotoCoreError as err:
        # Anything else botocore raises (credential refresh, a broken response) may pass.
        name = type(err).__name__
        raise ApplicationError(f"{operation}: {name}: {err}", type=name) from err
