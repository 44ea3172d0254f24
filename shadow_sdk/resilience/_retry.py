"""Named timeouts and retry policies for activities, so that no call goes without them.

An activity without a start-to-close timeout waits forever for a worker that
crashed; one without a schedule-to-close timeout is retried forever while a
dependency stays down. Each preset is a complete set of options for
``workflow.execute_activity``, to be spread into the call::

    await workflow.execute_activity(fetch_rates, currency, **EXTERNAL_API)

and adapted with ordinary dict syntax when a step needs something else::

    await workflow.execute_activity(report, day, **{**LONG_RUNNING, "heartbeat_timeout": ...})

Errors whose ``ApplicationError.type`` is in :data:`NON_RETRYABLE_ERROR_TYPES` are
never retried by any preset: retrying cannot fix a bad input or a refused
permission. ``CircuitOpen`` is retryable on purpose: the circuit breaker's error
carries ``next_retry_delay``, so the next attempt waits until the circuit half-opens.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy

NON_RETRYABLE_ERROR_TYPES = (
    "InvalidInput",
    "ValidationError",
    "PermissionDenied",
    "NotFound",
    "SagaCompensationFailed",
)
"""``ApplicationError`` types no preset retries.

``InvalidInput``: raise it for arguments that can never succeed. ``ValidationError``:
pydantic's, when an activity validates its input. ``PermissionDenied``: refused by
authorization. ``NotFound``: what was asked for does not exist. ``SagaCompensationFailed``:
a saga could not undo its steps; a person has to look.
"""


class ActivityOptions(TypedDict, total=False):
    """The keyword arguments of ``workflow.execute_activity`` that a preset sets."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy


def _retry(initial: timedelta, maximum: timedelta, attempts: int = 0) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=initial,
        backoff_coefficient=2.0,
        maximum_interval=maximum,
        maximum_attempts=attempts,
        non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
    )


QUICK: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(minutes=2),
    "retry_policy": _retry(timedelta(milliseconds=200), timedelta(seconds=10), attempts=10),
}
"""Fast, idempotent calls to services you run (a database, an internal API): 10 s per
attempt, retried quickly, given up after 10 attempts or 2 minutes."""

EXTERNAL_API: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(hours=1),
    "retry_policy": _retry(timedelta(seconds=1), timedelta(minutes=2)),
}
"""Calls to someone else's service, which has outages and rate limits: 30 s per
attempt, backing off to one attempt every 2 minutes, for up to an hour."""

LONG_RUNNING: ActivityOptions = {
    "start_to_close_timeout": timedelta(hours=2),
    "schedule_to_close_timeout": timedelta(hours=6),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": _retry(timedelta(seconds=10), timedelta(minutes=5), attempts=5),
}
"""Jobs of minutes to hours that heartbeat (with progress, so that a retry resumes):
a worker that dies is noticed within 30 s, an attempt may run 2 hours, 5 attempts."""
