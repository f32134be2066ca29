"""Timeouts and retry policies of the activities, chosen in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# AWS and HTTP calls: throttling, 5xx and connection errors back off and retry; errors that a
# retry cannot fix are raised as non-retryable by the activities and fail at once.
CALL_TIMEOUT = timedelta(seconds=60)
# Workers heartbeat every running activity (runtime/heartbeats.py): an activity whose worker
# died is retried this long after the last heartbeat instead of after the whole CALL_TIMEOUT.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
HEARTBEAT_EVERY = timedelta(seconds=2)
CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)

# Putting production back must not give up early: more attempts, same backoff.
RESTORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=20,
)

# Notifications (activities/notify.py): a few quick attempts, then a warning in the status. A
# message that cannot get through must neither hold a deployment up for long nor fail it.
NOTIFY_TIMEOUT = timedelta(seconds=20)
"""One attempt: the HTTP request's own timeout (10 s) and some margin."""
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
)
NOTIFY_DEADLINE = timedelta(minutes=2)
"""Every attempt and backoff of one notification together (schedule to close)."""

# A metric measurement is a read repeated every interval: one that fails counts as inconclusive
# and the next interval tries again, so it must not back off for minutes first.
MEASURE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=2,
)
