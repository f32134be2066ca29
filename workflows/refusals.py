"""Refusing a message the deployment cannot take now: the same rule for updates and signals.

An update's validator rejects it with the reason, which its sender reads; a signal cannot be
rejected, so the reason is kept among the deployment's warnings instead.
"""

from temporalio.exceptions import ApplicationError


def reject(refusal: str | None, error_type: str) -> None:
    """In an update's validator: reject with ``refusal`` (when there is one)."""
    if refusal:
        raise ApplicationError(refusal, type=error_type, non_retryable=True)


def ignored(warnings: list[str], message: str, by: str, refusal: str | None) -> bool:
    """In a signal handler: record ``refusal`` (when there is one) and say whether it applied."""
    if refusal:
        warnings.append(f"ignored {message} from {by}: {refusal}")
    return bool(refusal)
