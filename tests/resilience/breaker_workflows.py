"""A workflow whose activity calls a flaky dependency through a shared circuit breaker.

They live in a module of their own because the workflow sandbox imports
workflow code from files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from shadow_sdk.resilience import CircuitBreaker, circuit_breaker


@dataclass
class FlakyService:
    """The dependency: its first ``failures`` calls fail, then it answers."""

    failures: int
    calls: int = 0

    async def quote(self, item: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"quote service unavailable (call {self.calls})")
        return f"quote for {item}"


@dataclass
class Attempt:
    """One activity attempt as the activity saw it."""

    number: int
    outcome: str
    at: float = field(default_factory=time.time)


# By breaker name, which each test makes unique.
SERVICES: dict[str, FlakyService] = {}
ATTEMPTS: dict[str, list[Attempt]] = {}


def quotes_breaker(name: str) -> CircuitBreaker:
    """The worker process's breaker of the quote service; every attempt gets the same one."""
    return circuit_breaker(
        name, consecutive_failures=2, open_duration=timedelta(seconds=2.5), half_open_max_calls=1
    )


@activity.defn
async def fetch_quote(breaker: str) -> str:
    attempts = ATTEMPTS.setdefault(breaker, [])
    number = activity.info().attempt
    try:
        quote = await quotes_breaker(breaker).call(SERVICES[breaker].quote, "book")
    except Exception as error:
        attempts.append(Attempt(number, type(error).__name__))
        raise
    attempts.append(Attempt(number, "ok"))
    return quote


@workflow.defn
class QuoteWorkflow:
    @workflow.run
    async def run(self, breaker: str, maximum_attempts: int) -> str:
        return await workflow.execute_activity(
            fetch_quote,
            breaker,
            start_to_close_timeout=timedelta(seconds=10),
            # The server spaces retries by at least a second whatever this says.
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=1.0,
                maximum_attempts=maximum_attempts,
            ),
        )
