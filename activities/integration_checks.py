"""Integration checks: HTTP requests against the new color before it gets public traffic."""

import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import http
from models.activities import IntegrationChecksInput
from models.config import IntegrationCheck, expand_url
from models.observations import CheckResult


@activity.defn
def run_integration_checks(arg: IntegrationChecksInput) -> list[CheckResult]:
    """Every check's result, passed or not: a check that cannot connect has failed, too."""
    results = []
    for check in arg.checks:
        activity.heartbeat(check.name)
        results.append(_run(check, arg.color_url))
    return results


def _run(check: IntegrationCheck, color_url: str | None) -> CheckResult:
    started = time.monotonic()
    try:
        url = expand_url(check.url, color_url)
    except ValueError as err:
        return _result(check, check.url, False, None, str(err), started)
    try:
        response = http.request(url, method=check.method, timeout=check.timeout.total_seconds())
    except ApplicationError as err:
        return _result(check, url, False, None, err.message, started)
    status = response.status
    if status != check.expected_status:
        detail = (
            f"expected HTTP {check.expected_status}, got {status}: {http.snippet(response.body)}"
        )
        return _result(check, url, False, status, detail, started)
    if check.body_contains is not None and check.body_contains not in response.body:
        detail = f"body does not contain {check.body_contains!r}: {http.snippet(response.body)}"
        return _result(check, url, False, status, detail, started)
    return _result(check, url, True, status, f"HTTP {status}", started)


def _result(
    check: IntegrationCheck, url: str, passed: bool, status: int | None, detail: str, started: float
) -> CheckResult:
    return CheckResult(
        name=check.name,
        url=url,
        passed=passed,
        status=status,
        detail=detail,
        elapsed_ms=round((time.monotonic() - started) * 1000),
    )
