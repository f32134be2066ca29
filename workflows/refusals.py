"""Refusing a message the deployment cannot take now: the same rule for updates and signals.

An update's validator rejects it with the reason, which its sender reads; a signal cannot be
rejected, so the reason is kept among the deployment's warnings instead.
"""

from temporalio.exceptions import ApplicationError

from models.messages import UNKNOWN


def reject(refusal: str | None, error_type: str) -> None:
    """In an update's validator: reject with ``refusal`` (when there is one)."""
    if refusal:
        raise ApplicationError(refusal, type=error_type, non_retryable=True)


def ignored(warnings: list[str], message: str, by: str, refusal: str | None) -> bool:
    """In a signal handler: record ``refusal`` (when there is one) and say whether it applied."""
    if refusal:
        warnings.append(f"ignored {message} from {by}: {refusal}")
    return bool(refusal)


def self_approval_refusal(required: bool, approver: str, starter: str) -> str | None:
    """Four eyes (``approval.require_different_approver``): why ``approver`` may not approve a
    deployment ``starter`` started; None when they may, or when the rule is off.

    Names compare without regard to case or surrounding spaces (``Alice`` is ``alice``). An
    unknown name on either side is never taken for someone else: the rule fails closed.
    """
    if not required:
        return None
    rule = "approval.require_different_approver"
    if _person(approver) == UNKNOWN:
        return f"{rule} is set: the approval must say who gives it (by)"
    if _person(starter) == UNKNOWN:
        return f"{rule} is set, but who started this deployment is unknown"
    if _person(approver) == _person(starter):
        return f"{approver} started this deployment; {rule} asks someone else to approve it"
    return None


def _person(name: str) -> str:
    return name.strip().casefold()
