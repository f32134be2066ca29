"""Waiting for an approval, the same way wherever a deployment asks for one: before the switch
and at a traffic step."""

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.config import ApprovalConfig
    from models.durations import format_duration
    from workflows.calls import Calls, StepFailed


async def wait_for_approval(
    calls: Calls, policy: ApprovalConfig, given: Callable[[], bool], what: str, nobody: str
) -> str | None:
    """Wait until ``given()``, at most ``policy.timeout``; None once given.

    At the timeout, ``on_timeout = "abort"`` raises StepFailed (``ApprovalTimeout``: "NOBODY
    within 2h; aborted as configured"), and ``"proceed"`` returns what to record as the
    approval's comment. A rollback ends the wait at once (Interrupted). ``what`` names the wait
    in its timer's summary ("approval of 10%").
    """
    try:
        await workflow.wait_condition(
            lambda: given() or calls.interrupted(),
            timeout=policy.timeout,
            timeout_summary=(
                f"wait for {what}, at most {format_duration(policy.timeout)},"
                f" then {policy.on_timeout}"
            ),
        )
    except TimeoutError:
        waited = format_duration(policy.timeout)
        if policy.on_timeout == "abort":
            raise StepFailed(
                f"{nobody} within {waited}; aborted as configured", "ApprovalTimeout"
            ) from None
        return f"nobody approved within {waited}; proceeding as configured"
    calls.raise_if_interrupted()
    return None
