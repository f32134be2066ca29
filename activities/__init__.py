"""The activities: thin, idempotent wrappers over AWS and HTTP calls, each safe to run again.

Each is a synchronous function taking one pydantic model; the worker runs them in threads.
Errors a retry cannot fix are non-retryable ``ApplicationError``s; the workflow's retry
policies retry everything else with backoff.
"""

from collections.abc import Callable
from typing import Any

from activities import (
    alarms,
    analysis,
    connections,
    ecs,
    integration_checks,
    notify,
    ssm,
    traffic,
)

ALL_ACTIVITIES: list[Callable[..., Any]] = [
    ssm.read_color_state,
    ssm.set_active_color,
    ssm.set_color_version,
    ecs.register_task_definition,
    ecs.read_task_definition,
    ecs.update_service,
    ecs.check_health,
    ecs.scale_to_zero,
    traffic.read_router_weights,
    traffic.switch_traffic,
    traffic.set_traffic_weights,
    connections.count_connections,
    connections.notify_reconnect,
    integration_checks.run_integration_checks,
    alarms.read_alarm_states,
    analysis.measure_metric,
    notify.send_notification,
]
"""Everything the worker registers."""
