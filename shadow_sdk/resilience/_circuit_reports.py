"""What a circuit breaker reports: its transitions to the log, its calls and state as metrics.

Transitions are logged on the ``shadow_sdk.resilience`` logger and, like calls,
exported as metrics through a Temporal :class:`~temporalio.common.MetricMeter`:

* ``shadow_circuit_breaker_state{breaker}``, a gauge: 0 closed, 1 open, 2 half-open;
* ``shadow_circuit_breaker_transitions_total{breaker, to}``;
* ``shadow_circuit_breaker_calls_total{breaker, outcome}``: ``success``,
  ``failure``, ``ignored`` (an ignored exception type), ``cancelled`` (the caller
  gave up) or ``rejected`` (the circuit did not let the call through);
* ``shadow_circuit_breaker_slow_calls_total{breaker}``: calls slower than
  ``slow_call_duration``, whatever their outcome.
"""

from __future__ import annotations

import logging

import temporalio.common

from shadow_sdk.resilience._circuit_state import CircuitState

logger = logging.getLogger("shadow_sdk.resilience")

STATE_METRIC = "shadow_circuit_breaker_state"
TRANSITIONS_METRIC = "shadow_circuit_breaker_transitions"
CALLS_METRIC = "shadow_circuit_breaker_calls"
SLOW_CALLS_METRIC = "shadow_circuit_breaker_slow_calls"

# Outcomes of a call, the values of the ``outcome`` label; compared by identity.
SUCCESS = "success"
FAILURE = "failure"
IGNORED = "ignored"
CANCELLED = "cancelled"
REJECTED = "rejected"
OUTCOMES = (SUCCESS, FAILURE, IGNORED, CANCELLED, REJECTED)


class Transition:
    """A change of state, logged once the breaker's lock is released."""

    __slots__ = ("reason", "source", "to")

    def __init__(self, source: CircuitState, to: CircuitState, reason: str) -> None:
        self.source = source
        self.to = to
        self.reason = reason

    def log(self, name: str) -> None:
        level = logging.WARNING if self.to is CircuitState.OPEN else logging.INFO
        logger.log(
            level,
            "circuit breaker %r: %s -> %s: %s",
            name,
            self.source.value,
            self.to.value,
            self.reason,
            extra={
                "circuit_breaker": name,
                "circuit_from": self.source.value,
                "circuit_to": self.to.value,
                "circuit_reason": self.reason,
            },
        )


class BreakerMetrics:
    """The breaker's metrics, with their attributes bound once."""

    def __init__(self, meter: temporalio.common.MetricMeter, name: str) -> None:
        breaker = {"breaker": name}
        self.state = meter.create_gauge(
            STATE_METRIC, "Circuit breaker state: 0 closed, 1 open, 2 half-open"
        ).with_additional_attributes(breaker)
        transitions = meter.create_counter(TRANSITIONS_METRIC, "Circuit breaker state changes")
        self.transitions = {
            state: transitions.with_additional_attributes({**breaker, "to": state.value})
            for state in CircuitState
        }
        calls = meter.create_counter(CALLS_METRIC, "Calls through a circuit breaker by outcome")
        self.calls = {
            outcome: calls.with_additional_attributes({**breaker, "outcome": outcome})
            for outcome in OUTCOMES
        }
        self.slow = meter.create_counter(
            SLOW_CALLS_METRIC, "Calls through a circuit breaker slower than slow_call_duration"
        ).with_additional_attributes(breaker)


def log_store_unavailable(name: str, error: Exception) -> None:
    """Say that breaker ``name`` keeps to its local state because its store failed."""
    logger.warning(
        "circuit breaker %r: shared state is unavailable (%s: %s); "
        "using local state until the store answers again",
        name,
        type(error).__name__,
        error,
    )


def log_store_available(name: str) -> None:
    """Say that the store of breaker ``name`` answers again."""
    logger.info("circuit breaker %r: shared state is available again", name)
