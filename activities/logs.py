"""The worker's log lines: one per AWS call, saying which deployment, region and step it served.

Each boto3 client of ``activities/aws.py`` reports its calls here (botocore's ``after-call``
and ``after-call-error`` events) through ``activity.logger``, which adds the running activity
(its workflow ID is the deployment ID, its attempt). :class:`LogfmtFormatter`, the worker's,
prints those fields after the message, one line each::

    2026-05-01 10:41:07,345 INFO temporalio.activity: ecs.UpdateService: HTTP 200
        deployment=deploy-game-prod region=us-west-2 step=ecs.UpdateService
        request_id=8f6a2c1e-… activity=update_service attempt=1

(one line in the log; wrapped here). Workflow code logs through ``workflow.logger`` only: it
adds the deployment and the workflow type, and stays silent while a workflow replays.
"""

import json
import logging
from collections.abc import Mapping
from typing import Any

from temporalio import activity

AWS_CALL_FIELDS = ("region", "step", "request_id", "status", "error")
"""The ``extra`` keys of an AWS call's log record."""


def watch_calls(client: Any, service_name: str, region: str) -> None:
    """Log every call ``client`` (a boto3 client for ``service_name`` in ``region``) makes."""

    def answered(*, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        metadata = parsed.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode")
        fields: dict[str, Any] = {
            "region": region,
            "step": f"{service_name}.{model.name}",
            "request_id": metadata.get("RequestId"),
            "status": status,
        }
        error = parsed.get("Error", {})
        if error or (status or 0) >= 300:
            fields["error"] = error.get("Code") or f"HTTP {status}"
            said = f": {error['Message']}" if error.get("Message") else ""
            activity.logger.warning(
                "%s failed: %s%s", fields["step"], fields["error"], said, extra=fields
            )
        else:
            activity.logger.info("%s: HTTP %s", fields["step"], status, extra=fields)

    def unanswered(*, exception: BaseException, event_name: str, **_: Any) -> None:
        # after-call-error.<service-id>.<Operation>: no answer, so no request ID.
        step = f"{service_name}.{event_name.rpartition('.')[2]}"
        fields = {"region": region, "step": step, "error": type(exception).__name__}
        activity.logger.warning("%s failed: %s: %s", step, fields["error"], exception, extra=fields)

    client.meta.events.register("after-call", answered)
    client.meta.events.register("after-call-error", unanswered)


class LogfmtFormatter(logging.Formatter):
    """``time LEVEL logger: message`` and then ``key=value`` for what the record is about:
    the deployment (workflow ID), region, step, AWS request ID, activity and attempt, or the
    workflow type for workflow code. A traceback, if any, follows on the next lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = " ".join(f"{key}={_value(value)}" for key, value in fields(record).items())
        return f"{line} {pairs}" if pairs else line


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """What :class:`LogfmtFormatter` prints after the message, in order, the empty ones left out."""
    in_activity: Mapping[str, Any] = getattr(record, "temporal_activity", None) or {}
    in_workflow: Mapping[str, Any] = getattr(record, "temporal_workflow", None) or {}
    found: dict[str, Any] = {
        "deployment": in_activity.get("workflow_id") or in_workflow.get("workflow_id"),
        "region": getattr(record, "region", None),
        "step": getattr(record, "step", None) or in_activity.get("activity_type"),
        "request_id": getattr(record, "request_id", None),
        "status": getattr(record, "status", None),
        "error": getattr(record, "error", None),
        "activity": in_activity.get("activity_type"),
        "attempt": in_activity.get("attempt"),
        "workflow": in_workflow.get("workflow_type"),
        "update": in_workflow.get("update_name"),
    }
    return {key: value for key, value in found.items() if value not in (None, "")}


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\\'):
        return json.dumps(text)
    return text
