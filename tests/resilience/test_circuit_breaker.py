"""The circuit breaker: its state machine under a fake clock, concurrency, metrics, logs,
Redis-shared state, and an activity guarded by it on a real Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import prometheus_client
import pytest
import redis.asyncio
import temporalio.common
import temporalio.exceptions
import temporalio.runtime
from breaker_workflows import (
    ATTEMPTS,
    SERVICES,
    FlakyService,
    QuoteWorkflow,
    fetch_quote,
    quotes_breaker,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from network import free_port
from scrape import Scrape
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment

from shadow_sdk import ShadowError, ShadowSettings, ShadowWorker
from shadow_sdk.observability import TemporalMetricsCollector, create_runtime, registry_for
from shadow_sdk.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    RedisCircuitStore,
    circuit_breaker,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    """What the guarded dependency raises."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def name() -> str:
    """A breaker name no other test uses: the registry and Redis are process- and session-wide."""
    return f"dep-{uuid.uuid4().hex[:8]}"


async def succeed() -> str:
    return "ok"


async def fail() -> str:
    raise Boom("down")


async def outcome(breaker: CircuitBreaker, ok: bool) -> None:
    """One call through ``breaker`` that succeeds or fails; the failure is swallowed."""
    if ok:
        assert await breaker.call(succeed) == "ok"
    else:
        with pytest.raises(Boom):
            await breaker.call(fail)


async def calls(breaker: CircuitBreaker, pattern: str) -> None:
    """Calls in order: ``s`` succeeds, ``f`` fails."""
    for char in pattern:
        await outcome(breaker, char == "s")


async def open_circuit(breaker: CircuitBreaker) -> None:
    """Fail until the breaker opens."""
    while breaker.state is not OPEN:
        await outcome(breaker, ok=False)


class Metrics:
    """A runtime whose meter the breaker reports to, read back the way Prometheus does."""

    def __init__(self) -> None:
        self.runtime, buffer = create_runtime()
        self.registry = registry_for(TemporalMetricsCollector(buffer))

    @property
    def meter(self) -> temporalio.common.MetricMeter:
        return self.runtime.metric_meter

    def scrape(self) -> Scrape:
        return Scrape.parse(prometheus_client.generate_latest(self.registry).decode())


# Configuration.


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"window_size": 10, "consecutive_failures": 3},
            r"window_size and consecutive_failures: give only one",
        ),
        ({"window_size": 0}, r"window_size must be a whole number >= 1, got 0"),
        ({"window_size": True}, r"window_size must be a whole number >= 1"),
        ({"window_duration": 1.5}, r"window_duration must be whole seconds .* got 1.5 s"),
        ({"window_duration": timedelta(0)}, r"window_duration must be positive"),
        ({"window_duration": "10s"}, r"window_duration must be seconds or a timedelta"),
        ({"consecutive_failures": 0}, r"consecutive_failures must be a whole number >= 1"),
        (
            {"consecutive_failures": 3, "failure_rate_threshold": 0.5},
            r"failure_rate_threshold needs a sliding window",
        ),
        ({"consecutive_failures": 3, "minimum_calls": 5}, r"minimum_calls needs a sliding window"),
        (
            {"consecutive_failures": 3, "slow_call_duration": 1},
            r"slow_call_duration needs a sliding window",
        ),
        (
            {"failure_rate_threshold": 0},
            r"failure_rate_threshold must be a number in \(0, 1\], got 0",
        ),
        (
            {"failure_rate_threshold": 1.5},
            r"failure_rate_threshold must be a number in \(0, 1\], got 1.5",
        ),
        (
            {"window_size": 5, "minimum_calls": 6},
            r"minimum_calls \(6\) must not exceed window_size \(5\)",
        ),
        ({"minimum_calls": 0}, r"minimum_calls must be a whole number >= 1"),
        ({"slow_call_rate_threshold": 0.5}, r"slow_call_rate_threshold needs slow_call_duration"),
        ({"slow_call_duration": -1}, r"slow_call_duration must be positive"),
        (
            {"slow_call_duration": 1, "slow_call_rate_threshold": 2},
            r"slow_call_rate_threshold must be a number in \(0, 1\]",
        ),
        ({"open_duration": 0}, r"open_duration must be positive, got 0 s"),
        ({"half_open_max_calls": 0}, r"half_open_max_calls must be a whole number >= 1"),
        ({"record_exceptions": ()}, r"record_exceptions must name at least one exception type"),
        (
            {"record_exceptions": (BaseException,)},
            r"record_exceptions must hold subclasses of Exception",
        ),
        (
            {"ignore_exceptions": (asyncio.CancelledError,)},
            r"ignore_exceptions must hold subclasses of Exception",
        ),
        (
            {"ignore_exceptions": "ValueError"},
            r"ignore_exceptions must be a tuple of exception types",
        ),
        ({"sync_interval": 0}, r"sync_interval must be positive"),
    ],
)
def test_invalid_options_are_named(options: dict[str, Any], message: str) -> None:
    """Each bad option raises a ValueError naming the parameter and the value."""
    with pytest.raises(ValueError, match=message):
        CircuitBreaker("dependency", **options)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        CircuitBreaker("")


def test_defaults_are_resolved_into_the_config() -> None:
    """The config shows what is in effect: a count window of 100 calls unless told otherwise."""
    assert CircuitBreaker("dependency").config == CircuitBreakerConfig(
        window_size=100,
        failure_rate_threshold=0.5,
        minimum_calls=10,
        open_duration=timedelta(seconds=30),
        half_open_max_calls=3,
        record_exceptions=(Exception,),
        ignore_exceptions=(),
    )
    assert CircuitBreaker("dependency", window_size=4).config.minimum_calls == 4
    assert CircuitBreaker("dependency", window_duration=60).config.window_duration == timedelta(
        seconds=60
    )
    consecutive = CircuitBreaker("dependency", consecutive_failures=5).config
    assert (consecutive.window_size, consecutive.failure_rate_threshold) == (None, None)
    slow = CircuitBreaker("dependency", slow_call_duration=2).config
    assert (slow.slow_call_duration, slow.slow_call_rate_threshold) == (timedelta(seconds=2), 1.0)


# Failure detection.


async def test_a_count_window_judges_the_last_n_calls(clock: FakeClock) -> None:
    """Failures that slid out of the window no longer count."""
    breaker = CircuitBreaker("dependency", window_size=4, failure_rate_threshold=0.75, clock=clock)

    await calls(breaker, "ffssff")  # the windows hold ffss, fssf, ssff: 0.5 each time

    stats = breaker.stats
    assert (stats.state, stats.calls, stats.failures, stats.failure_rate) == (CLOSED, 4, 2, 0.5)

    await calls(breaker, "f")  # sfff

    assert breaker.state is OPEN


async def test_no_verdict_before_minimum_calls(clock: FakeClock) -> None:
    """Four failures out of four are not enough evidence when five calls are asked for."""
    breaker = CircuitBreaker("dependency", window_size=10, minimum_calls=5, clock=clock)

    await calls(breaker, "ffff")
    assert (breaker.state, breaker.stats.failures) == (CLOSED, 4)

    await calls(breaker, "f")
    assert breaker.state is OPEN


async def test_a_time_window_forgets_calls_older_than_its_duration(clock: FakeClock) -> None:
    """Calls leave a 10 s window when the clock reaches the tenth second after theirs."""
    breaker = CircuitBreaker(
        "dependency", window_duration=timedelta(seconds=10), minimum_calls=4, clock=clock
    )
    clock.now = 1000.0
    await calls(breaker, "fff")
    clock.now = 1009.99
    assert (breaker.stats.calls, breaker.stats.failures) == (3, 3)

    clock.now = 1010.0
    assert (breaker.stats.calls, breaker.stats.failures) == (0, 0)

    # Three successes and one failure: 0.25, where the forgotten failures would make 4/7.
    await calls(breaker, "sssf")
    assert (breaker.state, breaker.stats.calls, breaker.stats.failures) == (CLOSED, 4, 1)

    # Calls of different seconds leave one second at a time.
    clock.now = 1015.5
    await calls(breaker, "ss")
    clock.now = 1019.99
    assert (breaker.stats.calls, breaker.stats.failures) == (6, 1)
    clock.now = 1020.0
    assert (breaker.stats.calls, breaker.stats.failures) == (2, 0)

    # A long silence empties every bucket, however long.
    clock.advance(3600)
    assert breaker.stats.calls == 0
    await calls(breaker, "ffff")
    assert breaker.state is OPEN


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(1, 5),
    steps=st.lists(st.tuples(st.floats(0, 3, allow_nan=False), st.booleans()), max_size=60),
)
def test_a_time_window_counts_what_a_list_of_every_call_counts(
    seconds: int, steps: list[tuple[float, bool]]
) -> None:
    """Whatever the timing, the window holds exactly the calls made in its last T whole seconds."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "dependency", window_duration=seconds, minimum_calls=10**9, clock=clock
    )
    history: list[tuple[float, bool]] = []

    def call(failed: bool) -> None:
        if failed:
            raise Boom

    for advance, failed in steps:
        clock.advance(advance)
        history.append((clock.now, failed))
        with contextlib.suppress(Boom):
            breaker.call_sync(call, failed)

        recent = [failed for at, failed in history if int(at) > int(clock.now) - seconds]
        assert (breaker.stats.calls, breaker.stats.failures) == (len(recent), sum(recent))


async def test_consecutive_failures_open_only_when_in_a_row(clock: FakeClock) -> None:
    breaker = CircuitBreaker("dependency", consecutive_failures=3, clock=clock)

    await calls(breaker, "ffsff")
    assert (breaker.state, breaker.stats.consecutive_failures) == (CLOSED, 2)

    await calls(breaker, "f")
    assert breaker.state is OPEN


async def test_slow_calls_open_the_circuit_at_their_rate(clock: FakeClock) -> None:
    """A call longer than slow_call_duration is slow, even when it succeeds; exactly as long is not."""
    breaker = CircuitBreaker(
        "dependency",
        window_size=4,
        slow_call_duration=timedelta(seconds=1),
        slow_call_rate_threshold=0.5,
        clock=clock,
    )

    async def taking(seconds: float) -> str:
        clock.advance(seconds)
        return "ok"

    for seconds in (1.0, 0.1, 2.0):
        await breaker.call(taking, seconds)
    assert (breaker.state, breaker.stats.slow_calls) == (CLOSED, 1)

    await breaker.call(taking, 1.5)

    assert (breaker.state, breaker.stats.slow_calls, breaker.stats.failures) == (OPEN, 2, 0)


# Open, half-open, closed.


async def test_half_opens_after_exactly_open_duration(clock: FakeClock) -> None:
    breaker = CircuitBreaker("dependency", consecutive_failures=1, open_duration=30, clock=clock)
    await open_circuit(breaker)

    clock.advance(29.75)
    assert breaker.state is OPEN
    assert breaker.retry_after == timedelta(seconds=0.25)
    with pytest.raises(CircuitOpenError) as excinfo:
        await breaker.call(succeed)
    assert excinfo.value.retry_after == timedelta(seconds=0.25)

    clock.advance(0.25)
    assert breaker.state is HALF_OPEN
    assert breaker.retry_after is None


async def test_an_open_circuit_does_not_call_the_function(clock: FakeClock) -> None:
    breaker = CircuitBreaker("dependency", consecutive_failures=1, clock=clock)
    await open_circuit(breaker)
    called = []

    async def record() -> None:
        called.append("async")

    with pytest.raises(CircuitOpenError):
        await breaker.call(record)
    with pytest.raises(CircuitOpenError):
        breaker.call_sync(called.append, "sync")

    assert called == []


async def test_half_open_admits_at_most_max_calls_trials_at_once(clock: FakeClock) -> None:
    """Further calls are rejected while the trials run; the rejection leaves the delay to the retry policy."""
    breaker = CircuitBreaker(
        "dependency", consecutive_failures=1, open_duration=10, half_open_max_calls=2, clock=clock
    )
    await open_circuit(breaker)
    clock.advance(10)
    release = asyncio.Event()

    async def trial() -> str:
        await release.wait()
        return "ok"

    trials = [asyncio.create_task(breaker.call(trial)) for _ in range(2)]
    await asyncio.sleep(0)
    assert breaker.stats.trial_calls == 2

    with pytest.raises(CircuitOpenError) as excinfo:
        await breaker.call(succeed)
    assert excinfo.value.retry_after == timedelta(0)
    assert excinfo.value.next_retry_delay is None
    assert "half-open" in str(excinfo.value)

    release.set()
    assert await asyncio.gather(*trials) == ["ok", "ok"]
    assert breaker.state is CLOSED


async def test_trial_successes_close_the_circuit_with_a_fresh_window(clock: FakeClock) -> None:
    """It takes half_open_max_calls successful trials to close; the old failures are forgotten."""
    breaker = CircuitBreaker(
        "dependency", window_size=4, open_duration=5, half_open_max_calls=3, clock=clock
    )
    await calls(breaker, "ffff")
    clock.advance(5)

    await calls(breaker, "ss")
    assert breaker.state is HALF_OPEN
    await calls(breaker, "s")

    stats = breaker.stats
    assert (stats.state, stats.calls, stats.failures) == (CLOSED, 0, 0)


async def test_a_failed_trial_reopens_and_late_trials_do_not_count(clock: FakeClock) -> None:
    """The first failed trial reopens for a full open_duration; a trial ending after that changes nothing."""
    breaker = CircuitBreaker(
        "dependency", consecutive_failures=1, open_duration=10, half_open_max_calls=2, clock=clock
    )
    await open_circuit(breaker)
    clock.advance(10)
    release = asyncio.Event()

    async def slow_success() -> str:
        await release.wait()
        return "ok"

    late = asyncio.create_task(breaker.call(slow_success))
    await asyncio.sleep(0)
    await outcome(breaker, ok=False)
    assert breaker.state is OPEN
    assert breaker.retry_after == timedelta(seconds=10)

    release.set()
    assert await late == "ok"
    assert breaker.state is OPEN


async def test_a_slow_trial_reopens(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "dependency", window_size=2, slow_call_duration=1, open_duration=10, clock=clock
    )
    await calls(breaker, "ff")
    clock.advance(10)

    async def slow() -> str:
        clock.advance(2)
        return "ok"

    assert await breaker.call(slow) == "ok"
    assert breaker.state is OPEN


# What counts.


async def test_recorded_ignored_and_other_exceptions(clock: FakeClock) -> None:
    """Ignored types count neither way and win over recorded ones; unrecorded ones count as successes."""
    breaker = CircuitBreaker(
        "dependency",
        consecutive_failures=2,
        record_exceptions=(ConnectionError, TimeoutError),
        ignore_exceptions=(ConnectionRefusedError,),
        clock=clock,
    )

    def raising(error: Exception) -> None:
        raise error

    def attempt(error: Exception) -> None:
        with pytest.raises(type(error)):
            breaker.call_sync(raising, error)

    attempt(ConnectionError())
    attempt(ConnectionRefusedError())  # ignored: still one failure in a row
    assert breaker.stats.consecutive_failures == 1
    attempt(KeyError("x"))  # not recorded: the dependency answered
    assert breaker.stats.consecutive_failures == 0
    attempt(TimeoutError())
    attempt(ConnectionResetError())  # a ConnectionError
    assert breaker.state is OPEN


async def test_cancellation_never_counts(clock: FakeClock) -> None:
    """Neither asyncio's CancelledError nor temporalio's; a cancelled trial frees its place."""
    breaker = CircuitBreaker(
        "dependency", consecutive_failures=1, open_duration=5, half_open_max_calls=1, clock=clock
    )

    task = asyncio.create_task(breaker.call(asyncio.sleep, 60))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    def cancelled_activity() -> None:
        raise temporalio.exceptions.CancelledError

    with pytest.raises(temporalio.exceptions.CancelledError):
        breaker.call_sync(cancelled_activity)
    assert (breaker.state, breaker.stats.consecutive_failures) == (CLOSED, 0)

    await open_circuit(breaker)
    clock.advance(5)
    trial = asyncio.create_task(breaker.call(asyncio.sleep, 60))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial

    assert (breaker.state, breaker.stats.trial_calls) == (HALF_OPEN, 0)
    await calls(breaker, "s")
    assert breaker.state is CLOSED


# Ways to guard.


async def test_decorates_async_functions_keeping_their_signature(clock: FakeClock) -> None:
    breaker = CircuitBreaker("dependency", consecutive_failures=2, clock=clock)

    @breaker
    async def fetch(item: str, *, fail: bool = False) -> str:
        """Fetch an item."""
        if fail:
            raise Boom(item)
        return item.upper()

    assert inspect.iscoroutinefunction(fetch)
    assert (fetch.__name__, fetch.__doc__) == ("fetch", "Fetch an item.")
    assert str(inspect.signature(fetch)) == "(item: 'str', *, fail: 'bool' = False) -> 'str'"
    assert await fetch("a") == "A"
    for _ in range(2):
        with pytest.raises(Boom):
            await fetch("b", fail=True)
    with pytest.raises(CircuitOpenError):
        await fetch("c")


async def test_decorates_sync_functions_keeping_their_signature(clock: FakeClock) -> None:
    breaker = CircuitBreaker("dependency", consecutive_failures=2, clock=clock)

    @breaker
    def fetch(item: str, *, fail: bool = False) -> str:
        """Fetch an item."""
        if fail:
            raise Boom(item)
        return item.upper()

    assert not inspect.iscoroutinefunction(fetch)
    assert (fetch.__name__, fetch.__doc__) == ("fetch", "Fetch an item.")
    assert str(inspect.signature(fetch)) == "(item: 'str', *, fail: 'bool' = False) -> 'str'"
    assert fetch("a") == "A"
    for _ in range(2):
        with pytest.raises(Boom):
            fetch("b", fail=True)
    with pytest.raises(CircuitOpenError):
        fetch("c")


async def test_async_with_guards_a_block(clock: FakeClock) -> None:
    """A block that raises is a failed call; an open circuit stops the block before it runs."""
    breaker = CircuitBreaker("dependency", consecutive_failures=2, clock=clock)
    other = CircuitBreaker("other", consecutive_failures=2, clock=clock)
    ran = []

    async with breaker:
        ran.append("ok")
    for _ in range(2):
        with pytest.raises(Boom):
            async with breaker, other:  # nested: each breaker books its own call
                raise Boom
    assert (breaker.state, other.state) == (OPEN, OPEN)

    with pytest.raises(CircuitOpenError):
        async with breaker:
            ran.append("never")
    assert ran == ["ok"]


# The registry.


def test_the_registry_shares_one_breaker_per_name(name: str) -> None:
    first = circuit_breaker(name, window_size=20, open_duration=timedelta(seconds=10))

    assert circuit_breaker(name, window_size=20, open_duration=10) is first
    assert circuit_breaker(f"{name}-other", window_size=20) is not first


def test_the_registry_refuses_other_options_for_a_name(name: str) -> None:
    circuit_breaker(name, window_size=20, open_duration=10)

    with pytest.raises(
        ValueError,
        match=rf"circuit breaker '{name}' already exists with other options: window_size 20 \(asked for 10\), minimum_calls 10 \(asked for 5\)",
    ):
        circuit_breaker(name, window_size=10, minimum_calls=5, open_duration=10)
    with pytest.raises(ValueError, match=r"clock"):
        circuit_breaker(name, window_size=20, open_duration=10, clock=FakeClock())


# The error.


async def test_circuit_open_error_tells_temporal_when_to_retry(clock: FakeClock) -> None:
    breaker = CircuitBreaker("payments", consecutive_failures=1, open_duration=30, clock=clock)
    await open_circuit(breaker)
    clock.advance(17.5)

    with pytest.raises(CircuitOpenError) as excinfo:
        await breaker.call(succeed)

    error = excinfo.value
    assert isinstance(error, ApplicationError)
    assert isinstance(error, ShadowError)
    assert error.type == "CircuitOpen"
    assert error.non_retryable is False
    assert error.next_retry_delay == timedelta(seconds=12.5)
    assert error.retry_after == timedelta(seconds=12.5)
    assert error.breaker == "payments"
    assert error.category == temporalio.exceptions.ApplicationErrorCategory.BENIGN
    assert str(error) == "CircuitOpen: circuit breaker 'payments' is open; retry in 12.5 s"


# Concurrency.


@pytest.mark.parametrize("style", ["call", "decorator", "async with"])
async def test_concurrent_calls_are_not_serialised(style: str) -> None:
    """50 calls of 0.2 s at once take about 0.2 s, not 10 s: no lock is held while a call runs."""
    breaker = CircuitBreaker("dependency")

    async def work() -> None:
        await asyncio.sleep(0.2)

    guarded = breaker(work)

    async def one() -> None:
        if style == "call":
            await breaker.call(work)
        elif style == "decorator":
            await guarded()
        else:
            async with breaker:
                await work()

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(50)))

    assert time.monotonic() - started < 2
    assert breaker.stats.calls == 50


def test_sync_calls_in_threads_are_not_serialised() -> None:
    breaker = CircuitBreaker("dependency")
    with ThreadPoolExecutor(max_workers=20) as pool:
        started = time.monotonic()
        list(pool.map(lambda _: breaker.call_sync(time.sleep, 0.2), range(20)))
        elapsed = time.monotonic() - started

    assert elapsed < 2
    assert breaker.stats.calls == 20


@pytest.mark.parametrize(("failures", "state"), [(299, CLOSED), (300, OPEN)])
async def test_counts_stay_exact_under_1000_concurrent_async_calls(
    failures: int, state: CircuitState
) -> None:
    """The verdict falls on the 1000th call, whatever order the calls end in."""
    breaker = CircuitBreaker(
        "dependency", window_size=1000, minimum_calls=1000, failure_rate_threshold=0.3
    )

    async def one(index: int) -> None:
        await asyncio.sleep(0.001 * (index % 7))
        if index < failures:
            raise Boom

    results = await asyncio.gather(
        *(breaker.call(one, index) for index in range(1000)), return_exceptions=True
    )

    assert sum(isinstance(result, Boom) for result in results) == failures
    stats = breaker.stats
    assert (stats.state, stats.calls, stats.failures) == (state, 1000, failures)


@pytest.mark.parametrize(("failures", "state"), [(299, CLOSED), (300, OPEN)])
def test_counts_stay_exact_under_1000_sync_calls_in_a_thread_pool(
    failures: int, state: CircuitState
) -> None:
    metrics = Metrics()
    breaker = CircuitBreaker(
        "dependency",
        window_size=1000,
        minimum_calls=1000,
        failure_rate_threshold=0.3,
        metric_meter=metrics.meter,
    )
    barrier = threading.Barrier(16)

    def one(index: int) -> None:
        if index < 16:
            barrier.wait(timeout=10)  # make sure the pool's threads really overlap
        if index < failures:
            raise Boom

    def guarded(index: int) -> bool:
        try:
            breaker.call_sync(one, index)
        except Boom:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(guarded, range(1000)))

    assert results.count(False) == failures
    stats = breaker.stats
    assert (stats.state, stats.calls, stats.failures) == (state, 1000, failures)
    scraped = metrics.scrape()
    assert scraped.value("shadow_circuit_breaker_calls_total", outcome="failure") == failures
    assert scraped.value("shadow_circuit_breaker_calls_total", outcome="success") == 1000 - failures
    assert scraped.value("shadow_circuit_breaker_transitions_total", to="open") == (state is OPEN)


# Metrics and logs.


async def test_metrics_follow_states_and_outcomes(clock: FakeClock, name: str) -> None:
    metrics = Metrics()
    breaker = CircuitBreaker(
        name,
        window_size=2,
        slow_call_duration=1,
        ignore_exceptions=(ValueError,),
        open_duration=10,
        half_open_max_calls=1,
        metric_meter=metrics.meter,
        clock=clock,
    )

    def gauge() -> float:
        return metrics.scrape().value("shadow_circuit_breaker_state", breaker=name)

    def count(metric: str, **labels: str) -> float:
        return metrics.scrape().value(
            f"shadow_circuit_breaker_{metric}_total", breaker=name, **labels
        )

    async def slow_failure() -> None:
        clock.advance(2)
        raise Boom

    async def invalid() -> None:
        raise ValueError("not the dependency's fault")

    await calls(breaker, "s")
    assert gauge() == 0
    with pytest.raises(ValueError, match="fault"):
        await breaker.call(invalid)
    with pytest.raises(Boom):
        await breaker.call(slow_failure)  # the window holds s and f: 0.5
    assert gauge() == 1
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    clock.advance(10)
    assert gauge() == 1  # nothing asked the breaker yet
    assert breaker.state is HALF_OPEN
    assert gauge() == 2
    await calls(breaker, "s")
    assert gauge() == 0

    assert {to: count("transitions", to=to) for to in ("open", "half_open", "closed")} == {
        "open": 1,
        "half_open": 1,
        "closed": 1,
    }
    assert {
        outcome: count("calls", outcome=outcome)
        for outcome in ("success", "failure", "ignored", "cancelled", "rejected")
    } == {"success": 2, "failure": 1, "ignored": 1, "cancelled": 0, "rejected": 1}
    assert count("slow_calls") == 1
    assert metrics.scrape().types["shadow_circuit_breaker_state"] == "gauge"


async def test_without_a_meter_it_reports_to_the_default_runtime_at_first_use(name: str) -> None:
    """A breaker made at import time still reports into the runtime a worker installs later."""
    breaker = CircuitBreaker(name, consecutive_failures=1)
    metrics = Metrics()
    previous = temporalio.runtime.Runtime.default()
    temporalio.runtime.Runtime.set_default(metrics.runtime, error_if_already_set=False)
    try:
        await calls(breaker, "sf")
    finally:
        temporalio.runtime.Runtime.set_default(previous, error_if_already_set=False)

    scraped = metrics.scrape()
    assert scraped.value("shadow_circuit_breaker_state", breaker=name) == 1
    assert scraped.value("shadow_circuit_breaker_calls_total", breaker=name) == 2


async def test_transitions_are_logged_with_their_reason(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shadow_sdk.resilience")
    breaker = CircuitBreaker(
        "payments", window_size=4, open_duration=30, half_open_max_calls=1, clock=clock
    )

    await calls(breaker, "sfsf")
    clock.advance(30)
    await calls(breaker, "s")

    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "WARNING",
            "circuit breaker 'payments': closed -> open: failure rate 0.5 >= 0.5 over 4 calls; rejecting calls for 30 s",
        ),
        (
            "INFO",
            "circuit breaker 'payments': open -> half_open: open for 30 s; admitting 1 trial call",
        ),
        ("INFO", "circuit breaker 'payments': half_open -> closed: 1 trial call succeeded"),
    ]
    assert caplog.records[0].circuit_to == "open"  # type: ignore[attr-defined]


# Shared state through Redis.


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test-circuit-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def stores(redis_url: str, prefix: str) -> AsyncIterator[list[RedisCircuitStore]]:
    """Two stores, each with a client of its own, as two worker processes would have."""
    async with (
        RedisCircuitStore(redis_url, prefix=prefix) as first,
        RedisCircuitStore(redis_url, prefix=prefix) as second,
    ):
        yield [first, second]


async def test_one_process_opening_the_circuit_protects_the_others(
    stores: list[RedisCircuitStore], redis_client: redis.asyncio.Redis, name: str
) -> None:
    """B rejects within one sync interval of A opening, and reopens when A's trial fails."""
    clock_a, clock_b = FakeClock(), FakeClock()
    options: dict[str, Any] = {
        "consecutive_failures": 2,
        "open_duration": 30,
        "half_open_max_calls": 1,
    }
    a = CircuitBreaker(name, store=stores[0], clock=clock_a, **options)
    b = CircuitBreaker(name, store=stores[1], clock=clock_b, **options)
    await calls(b, "s")  # B read the store now, so it will not read it again for 1 s

    before = time.time()
    await calls(a, "ff")
    key = stores[0].key(name)
    until = float(await redis_client.get(key) or 0)
    assert before + 30 <= until <= time.time() + 30
    assert 29_000 < await redis_client.pttl(key) <= 30_000

    clock_b.advance(0.5)
    await calls(b, "s")  # within the sync interval: B still trusts its own state
    clock_b.advance(0.5)
    with pytest.raises(CircuitOpenError) as excinfo:
        await b.call(succeed)
    assert timedelta(seconds=29) < excinfo.value.retry_after <= timedelta(seconds=30)
    assert b.state is OPEN

    # Both half-open on their own clocks; A's trial fails, so A publishes a later time.
    clock_a.advance(30)
    clock_b.advance(30)
    assert b.state is HALF_OPEN
    await calls(a, "f")
    assert float(await redis_client.get(key) or 0) > until
    clock_b.advance(1)
    with pytest.raises(CircuitOpenError):
        await b.call(succeed)
    assert b.state is OPEN

    # A closes through its own trial. The key is left to expire, and A's next look
    # at it, its own publication, reopens nothing.
    clock_a.advance(30)
    await calls(a, "s")
    assert a.state is CLOSED
    clock_a.advance(1)
    await calls(a, "s")
    assert a.state is CLOSED


async def test_the_store_is_read_at_most_once_per_sync_interval(
    redis_url: str, prefix: str, clock: FakeClock, name: str
) -> None:
    """Redis adds no round trip to the calls between two syncs."""

    class CountingStore(RedisCircuitStore):
        reads = 0

        async def open_until(self, name: str) -> float | None:
            self.reads += 1
            return await super().open_until(name)

    async with CountingStore(redis_url, prefix=prefix) as store:
        breaker = CircuitBreaker(name, store=store, sync_interval=timedelta(seconds=1), clock=clock)
        await asyncio.gather(*(breaker.call(succeed) for _ in range(100)))
        for _ in range(7):
            clock.advance(0.125)
            await breaker.call(succeed)
        assert store.reads == 1

        clock.advance(0.125)
        await breaker.call(succeed)
        assert store.reads == 2


async def test_calls_work_locally_when_redis_is_unreachable(
    clock: FakeClock, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Errors talking to Redis never fail a call; one warning per streak of them."""
    caplog.set_level(logging.WARNING, logger="shadow_sdk.resilience")
    async with RedisCircuitStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5) as store:
        breaker = CircuitBreaker(
            name, consecutive_failures=2, open_duration=30, store=store, clock=clock
        )
        for _ in range(3):
            await calls(breaker, "s")
            clock.advance(1)
        await calls(breaker, "ff")  # opening tries to publish, and fails too
        assert breaker.state is OPEN
        clock.advance(1)
        with pytest.raises(CircuitOpenError):
            await breaker.call(succeed)

    unavailable = [
        record for record in caplog.records if "shared state is unavailable" in record.getMessage()
    ]
    assert len(unavailable) == 1
    assert unavailable[0].levelname == "WARNING"
    assert name in unavailable[0].getMessage()


async def test_call_sync_keeps_to_local_state(
    stores: list[RedisCircuitStore], redis_client: redis.asyncio.Redis, name: str, clock: FakeClock
) -> None:
    """A sync caller has no event loop to talk to Redis from: it neither publishes nor reads."""
    breaker = CircuitBreaker(name, consecutive_failures=1, store=stores[0], clock=clock)

    def fail_sync() -> None:
        raise Boom

    with pytest.raises(Boom):
        breaker.call_sync(fail_sync)

    assert breaker.state is OPEN
    assert await redis_client.get(stores[0].key(name)) is None


def test_redis_store_names_the_extra_when_redis_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)

    with pytest.raises(ImportError, match=r"shadow-sdk\[redis\]"):
        RedisCircuitStore("redis://127.0.0.1:6379/0")


async def test_redis_store_leaves_a_given_client_open(
    redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    async with RedisCircuitStore(redis_client, prefix=prefix) as store:
        await store.publish_open("dependency", time.time() + 5)

    assert await redis_client.exists(f"{prefix}:dependency") == 1


# On a real Temporal server.


@pytest.fixture
def quote_breaker(name: str) -> Iterator[str]:
    yield name
    SERVICES.pop(name, None)
    ATTEMPTS.pop(name, None)


async def test_an_open_circuit_makes_temporal_wait_until_it_half_opens(
    dev_server_env: WorkflowEnvironment, task_queue: str, quote_breaker: str
) -> None:
    """Two failures open the circuit; the next attempt is rejected and retried once it half-opens.

    The dev server runs in real time, like the breaker's clock, so the open
    duration of 2.5 s is what both sides see. The retry policy spaces attempts by
    1 s: the rejected attempt's retry waits longer, for as long as it asked.
    """
    client = dev_server_env.client
    SERVICES[quote_breaker] = FlakyService(failures=2)

    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[QuoteWorkflow],
        activities=[fetch_quote],
    ):
        handle = await client.start_workflow(
            QuoteWorkflow.run,
            args=[quote_breaker, 10],
            id=f"quote-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert await handle.result() == "quote for book"

    attempts = ATTEMPTS[quote_breaker]
    assert [(attempt.number, attempt.outcome) for attempt in attempts] == [
        (1, "ConnectionError"),
        (2, "ConnectionError"),
        (3, "CircuitOpenError"),
        (4, "ok"),
    ]
    # The rejected attempt never reached the service: it saw two failures and one success.
    assert SERVICES[quote_breaker].calls == 3

    history = await handle.fetch_history()
    [started] = [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    last_failure = started.activity_task_started_event_attributes.last_failure
    info = last_failure.application_failure_info
    assert started.activity_task_started_event_attributes.attempt == 4
    assert (info.type, info.non_retryable) == ("CircuitOpen", False)
    assert info.HasField("next_retry_delay")
    delay = info.next_retry_delay.ToTimedelta()
    assert timedelta(seconds=1) < delay < timedelta(seconds=2.5)
    assert quote_breaker in last_failure.message
    # Temporal waited the delay the error asked for, not the policy's 1 s.
    assert attempts[3].at - attempts[2].at >= delay.total_seconds() - 0.05
    assert quotes_breaker(quote_breaker).state is CircuitState.CLOSED


async def test_an_activity_out_of_attempts_fails_with_circuit_open(
    dev_server_env: WorkflowEnvironment, task_queue: str, quote_breaker: str
) -> None:
    """The history's failed activity carries the CircuitOpen type and the delay it asked for."""
    client = dev_server_env.client
    SERVICES[quote_breaker] = FlakyService(failures=1000)

    async with ShadowWorker(
        client,
        ShadowSettings(temporal_task_queue=task_queue),
        workflows=[QuoteWorkflow],
        activities=[fetch_quote],
    ):
        handle = await client.start_workflow(
            QuoteWorkflow.run,
            args=[quote_breaker, 3],
            id=f"quote-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as excinfo:
            await handle.result()

    assert isinstance(excinfo.value.cause, ActivityError)
    cause = excinfo.value.cause.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("CircuitOpen", False)
    assert cause.next_retry_delay is not None

    history = await handle.fetch_history()
    [failed] = [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    failure = failed.activity_task_failed_event_attributes.failure
    assert failure.application_failure_info.type == "CircuitOpen"
    assert failure.application_failure_info.HasField("next_retry_delay")
    assert SERVICES[quote_breaker].calls == 2
