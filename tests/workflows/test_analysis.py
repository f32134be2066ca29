"""Metric analysis on the time-skipping server with fake activities: it judges every traffic step
and the bake, no data is never a pass, and the failure and inconclusive limits roll back."""

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from models.deployment import DeploymentRequest, DeploymentStatus, Phase, State
from tests.factories import deployment_request, environment
from tests.workflows.driving import deploy, phases
from tests.workflows.fake_aws import FakeAws

BLUE = {"blue": 100, "green": 0}
CANARY = {"strategy": "canary", "percent": 10, "pause": "1m"}


def analysed(
    traffic: dict[str, Any] | None = None, bake: str = "0s", **metric: Any
) -> DeploymentRequest:
    """Deploy version 2 with one prometheus metric, error-rate (max 0.05, measured every 10 s),
    with ``metric``'s keys on top."""
    settings = {
        "name": "error-rate",
        "provider": "prometheus",
        "query": 'sum(rate(errors{color="{color}"}[{window}]))',
        "max": 0.05,
        "interval": "10s",
    } | metric
    env = environment(
        traffic=traffic or {},
        bake={"duration": bake, "poll_interval": "10s"},
        analysis={"prometheus_url": "http://prometheus:9090", "metrics": [settings]},
    )
    return deployment_request(env)


def measured_before(aws: FakeAws, name: str) -> int:
    """How many measurements came before the first call named ``name``."""
    names = aws.names()
    return names[: names.index(name)].count("measure_metric")


def assert_rolled_back_by_analysis(aws: FakeAws, status: DeploymentStatus, says: str) -> None:
    assert status.state == State.ROLLED_BACK
    assert status.report is not None
    assert status.report.error_type == "AnalysisFailed", status.report
    assert says in status.report.reason, status.report.reason
    assert status.report.compensation[0] == "traffic back to blue"
    assert (aws.active, aws.weights) == ("blue", BLUE)
    assert aws.desired == {"blue": 2, "green": 0}


async def test_a_passing_canary_is_measured_at_its_step_and_through_the_bake(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(metrics={"error-rate": [0.01]})
    status = await deploy(time_skipping.client, aws, analysed(CANARY, bake="1m"))

    assert status.state == State.SUCCEEDED
    [tally] = status.analysis
    assert (tally.failures, tally.inconclusive) == (0, 0)
    # Every 10 s: through the minute at 10 %, then through the minute's bake.
    assert tally.passes == tally.measurements >= 12
    assert tally.last is not None and "error-rate 0.01 <= max 0.05" in tally.last.reason
    assert 6 <= measured_before(aws, "set_active_color") <= 7
    measured = [a for n, a in aws.calls if n == "measure_metric"]
    assert {(a.color, a.region) for a in measured} == {("green", "us-west-2")}
    # Each looks back no further than green's first traffic: one moment for all of them.
    assert len({a.not_before for a in measured}) == 1 and measured[0].not_before is not None
    assert measured_before(aws, "scale_to_zero") == tally.measurements


async def test_a_failing_measurement_at_the_first_step_rolls_all_traffic_back(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(metrics={"error-rate": [0.01, 0.21]})
    status = await deploy(time_skipping.client, aws, analysed(CANARY, bake="1m"))

    assert_rolled_back_by_analysis(aws, status, "error-rate 0.21 > max 0.05 (1000 requests)")
    assert aws.splits == [{"blue": 90, "green": 10}, BLUE]
    assert "set_active_color" not in [n for n, a in aws.calls if getattr(a, "color", "") == "green"]
    assert status.analysis[0].failures == 1


@pytest.mark.parametrize(
    ("values", "ends"),
    [([0.3, 0.01], State.SUCCEEDED), ([0.3, 0.01, 0.4], State.ROLLED_BACK)],
)
async def test_the_failure_limit_tolerates_that_many_failures(
    time_skipping: WorkflowEnvironment, values: list[float | None], ends: State
) -> None:
    aws = FakeAws(metrics={"error-rate": values})
    status = await deploy(time_skipping.client, aws, analysed(CANARY, failure_limit=1))

    assert status.state == ends
    if ends == State.ROLLED_BACK:
        assert_rolled_back_by_analysis(aws, status, "more than failure_limit 1")


async def test_no_data_is_inconclusive_never_a_pass_and_its_limit_rolls_back(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(metrics={"error-rate": [None]})
    status = await deploy(time_skipping.client, aws, analysed(CANARY, inconclusive_limit=8))

    assert_rolled_back_by_analysis(aws, status, "inconclusive 9 times")
    assert "an empty result is never a pass" in status.report.reason  # type: ignore[union-attr]
    # The step's minute was over after 6 measurements, but no data did not let it go on.
    assert aws.splits == [{"blue": 90, "green": 10}, BLUE]
    assert status.analysis[0].measurements == 9


async def test_a_step_goes_on_only_after_a_pass_measured_during_it(
    time_skipping: WorkflowEnvironment,
) -> None:
    # Inconclusive through the first minute (too few requests), then passing.
    aws = FakeAws(metrics={"error-rate": [None] * 8 + [0.01]})
    status = await deploy(time_skipping.client, aws, analysed(CANARY, inconclusive_limit=10))

    assert status.state == State.SUCCEEDED
    assert measured_before(aws, "set_active_color") == 9
    assert (status.analysis[0].inconclusive, status.analysis[0].passes) == (8, 2)


async def test_too_few_requests_is_inconclusive(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws(metrics={"error-rate": [0.0]}, metric_requests=12)
    request = analysed(CANARY, min_requests=50, requests_query="sum(increase(requests[{window}]))")
    status = await deploy(time_skipping.client, aws, request)

    assert_rolled_back_by_analysis(aws, status, "12 requests, fewer than min_requests 50")


async def test_all_at_once_is_judged_through_the_bake(time_skipping: WorkflowEnvironment) -> None:
    aws = FakeAws(metrics={"error-rate": [0.01, 0.01, 0.01, 0.5]})
    status = await deploy(time_skipping.client, aws, analysed(bake="5m"))

    assert_rolled_back_by_analysis(aws, status, "error-rate 0.5 > max 0.05")
    assert status.report is not None and status.report.phase == Phase.BAKING
    assert Phase.DRAINING not in phases(status)


async def test_a_bake_of_zero_still_needs_one_passing_measurement(
    time_skipping: WorkflowEnvironment,
) -> None:
    aws = FakeAws(metrics={"error-rate": [None]})
    status = await deploy(time_skipping.client, aws, analysed())

    assert_rolled_back_by_analysis(aws, status, "inconclusive once")


async def test_a_measurement_that_fails_is_inconclusive_and_a_bad_query_fails_at_once(
    time_skipping: WorkflowEnvironment,
) -> None:
    down = ApplicationError("prometheus: connection refused", type="URLError")
    flaky = FakeAws(
        metrics={"error-rate": [0.01]}, failures={"measure_metric": [down, down, down, down]}
    )
    status = await deploy(time_skipping.client, flaky, analysed(CANARY, inconclusive_limit=3))
    assert status.state == State.SUCCEEDED
    assert status.analysis[0].inconclusive == 2  # two attempts each
    assert status.analysis[0].passes >= 1

    refused = ApplicationError(
        "bad_data: parse error at char 5", type="AnalysisQueryError", non_retryable=True
    )
    wrong = FakeAws(metrics={"error-rate": [0.01]}, failures={"measure_metric": [refused]})
    status = await deploy(time_skipping.client, wrong, analysed(CANARY, inconclusive_limit=3))
    assert status.state == State.ROLLED_BACK
    assert status.report is not None and status.report.error_type == "AnalysisQueryError"
    assert "parse error at char 5" in status.report.reason
