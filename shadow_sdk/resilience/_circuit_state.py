"""What a circuit breaker tells its callers: its state, its rejection, a snapshot of its counts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

import temporalio.exceptions

from shadow_sdk._exceptions import ShadowError


class CircuitState(enum.StrEnum):
    """Where a circuit breaker stands; the gauge exports it as :attr:`gauge_value`."""

    CLOSED = "closed"
    """Calls go through and their outcomes are watched."""
    OPEN = "open"
    """Calls are rejected until ``open_duration`` has passed."""
    HALF_OPEN = "half_open"
    """Up to ``half_open_max_calls`` trial calls go through; the rest are rejected."""

    @property
    def gauge_value(self) -> int:
        """The value of ``shadow_circuit_breaker_state``: 0 closed, 1 open, 2 half-open."""
        return _GAUGE_VALUES[self]


_GAUGE_VALUES = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}


class CircuitOpenError(temporalio.exceptions.ApplicationError, ShadowError):
    """A circuit breaker rejected a call without making it.

    It is a retryable :class:`~temporalio.exceptions.ApplicationError` of type
    ``CircuitOpen`` whose ``next_retry_delay`` is the time until the circuit
    half-opens: raised from an activity, it makes Temporal retry exactly when a
    trial call may go through, whatever the retry policy's backoff says (its
    maximum attempts and timeouts still apply). Its category is ``BENIGN``: a
    rejection is the breaker working, so the worker logs it at DEBUG instead of
    as a failed activity with a traceback; ``shadow_circuit_breaker_calls_total
    {outcome="rejected"}`` counts them.

    A half-open circuit whose trial calls are all taken rejects with a zero
    ``retry_after`` and no ``next_retry_delay``: the trials may end any moment,
    so the retry policy's backoff decides.

    Attributes:
        breaker: The circuit breaker's name.
        retry_after: How long until the circuit half-opens; zero when it is
            half-open already.
    """

    def __init__(self, breaker: str, retry_after: timedelta) -> None:
        self.breaker = breaker
        self.retry_after = retry_after
        if retry_after > timedelta(0):
            message = (
                f"circuit breaker {breaker!r} is open; retry in {retry_after.total_seconds():.3g} s"
            )
        else:
            message = (
                f"circuit breaker {breaker!r} is half-open and its trial calls are running; "
                "retry later"
            )
        super().__init__(
            message,
            {"breaker": breaker, "retry_after_seconds": retry_after.total_seconds()},
            type="CircuitOpen",
            non_retryable=False,
            next_retry_delay=retry_after if retry_after > timedelta(0) else None,
            category=temporalio.exceptions.ApplicationErrorCategory.BENIGN,
        )


@dataclass(frozen=True)
class CircuitStats:
    """A snapshot of a circuit breaker, for health pages and tests.

    Attributes:
        state: The state.
        calls: Calls in the sliding window (0 with ``consecutive_failures``).
        failures: Failed calls in the sliding window.
        slow_calls: Slow calls in the sliding window.
        consecutive_failures: Failures since the last success, in any mode.
        trial_calls: Trial calls running while half-open.
    """

    state: CircuitState
    calls: int
    failures: int
    slow_calls: int
    consecutive_failures: int
    trial_calls: int

    @property
    def failure_rate(self) -> float | None:
        """Failures over calls in the window, or ``None`` when it is empty."""
        return self.failures / self.calls if self.calls else None
