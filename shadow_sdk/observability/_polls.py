"""PollHealth: whether a worker's polls reach Temporal, from the SDK core's request metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

POLL_OPERATIONS = frozenset(
    {"PollWorkflowTaskQueue", "PollActivityTaskQueue", "PollNexusTaskQueue"}
)
"""The long-poll calls of a worker, as the ``operation`` label of the core's metrics names them."""
REQUESTS = "temporal_long_request"
FAILURES = "temporal_long_request_failure"
LATENCY = "temporal_long_request_latency_seconds"
RECOVERY_QUIET = 5.0
"""Seconds without a failed poll, after the server answered, that end a failure streak."""

Labels = tuple[tuple[str, str], ...]


class PollHealth:
    """Tells how long a worker's polls have been failing, from what the SDK core reports.

    temporalio offers no event for a failing poll: the SDK core retries failed
    polls by itself, with backoff, for as long as the worker runs. What it does
    expose are its request metrics, per call attempt, labelled with the gRPC
    ``operation``:

    * ``temporal_long_request``: counted when a long poll attempt starts;
    * ``temporal_long_request_failure{status_code}``: counted when one fails
      (``UNAVAILABLE``, ``TRANSPORT_ERROR``, ``DEADLINE_EXCEEDED``...);
    * ``temporal_long_request_latency``: recorded when one ends, failed or not.

    :class:`~shadow_sdk.observability.TemporalMetricsCollector` hands every
    drain's updates to :meth:`observe`. A failure streak starts with the first
    failed poll and ends with evidence that polls go through again: a poll that
    ended without failing (more latencies than failures in one drain), or the server
    answering a health check (:meth:`server_answered`) followed by
    :data:`RECOVERY_QUIET` seconds without a failed poll. The second rule is
    needed because an idle server holds a successful poll for up to a minute
    before it answers.

    Args:
        clock: Seconds, monotonic; for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._last_failure: float | None = None
        self._answered_at: float | None = None
        self._status = ""

    def observe(self, updates: Sequence[tuple[str, Labels, float]]) -> None:
        """Take the metric updates of one drain into account (a collector listener)."""
        latencies = failures = 0
        status = ""
        for name, labels, value in updates:
            if name not in (FAILURES, LATENCY):
                continue
            attributes = dict(labels)
            if attributes.get("operation") not in POLL_OPERATIONS:
                continue
            if name == LATENCY:
                latencies += 1
            else:
                failures += int(value)
                status = attributes.get("status_code", "")
        if not latencies and not failures:
            return
        with self._lock:
            if failures:
                now = self._clock()
                self._status = status
                self._last_failure = now
                self._answered_at = None
                if self._failing_since is None:
                    self._failing_since = now
            if latencies > failures:  # A poll ended without failing: polls go through.
                self._failing_since = self._answered_at = None

    def server_answered(self) -> None:
        """Note that the Temporal service answered a call just now (a health check)."""
        with self._lock:
            if self._failing_since is not None and self._answered_at is None:
                self._answered_at = self._clock()

    @property
    def failing(self) -> bool:
        """Whether polls have failed since they last went through."""
        return self.failing_for() > 0

    @property
    def last_status(self) -> str:
        """The gRPC status of the last failed poll (``UNAVAILABLE``...), or ``""``."""
        return self._status

    def failing_for(self) -> float:
        """Seconds since polls started failing; 0 while they go through."""
        with self._lock:
            now = self._clock()
            if (
                self._answered_at is not None
                and self._last_failure is not None
                and now - max(self._answered_at, self._last_failure) >= RECOVERY_QUIET
            ):
                self._failing_since = self._answered_at = None
            if self._failing_since is None:
                return 0.0
            return max(now - self._failing_since, 1e-9)
