"""The circuit breaker: its state machine under a fake clock, concurrency, metrics, logs,
and an activity guarded by it on a real Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
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
from helpers.resilience import Boom, Metrics, Workflows, calls, open_circuit, outcome, succeed
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment

from shadow_sdk import ShadowError
from shadow_sdk.resilience import CircuitBreaker, CircuitOpenError, CircuitState
from shadow_sdk.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


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


# On a real Temporal server.


@pytest.fixture
def quote_breaker(name: str) -> Iterator[str]:
    """The name of the breaker, the flaky service and the attempts of one test."""
    yield name
    SERVICES.pop(name, None)
    ATTEMPTS.pop(name, None)


@pytest.fixture
def quotes(dev_server_env: WorkflowEnvironment, task_queue: str) -> Workflows:
    """The dev server runs in real time, like the breakers' clocks."""
    return Workflows(
        dev_server_env.client, task_queue, workflows=[QuoteWorkflow], activities=[fetch_quote]
    )


async def test_an_open_circuit_makes_temporal_wait_until_it_half_opens(
    quotes: Workflows, quote_breaker: str
) -> None:
    """Two failures open the circuit; the next attempt is rejected and retried once it half-opens.

    The dev server runs in real time, like the breaker's clock, so the open
    duration of 2.5 s is what both sides see. The retry policy spaces attempts by
    1 s: the rejected attempt's retry waits longer, for as long as it asked.
    """
    SERVICES[quote_breaker] = FlakyService(failures=2)

    async with quotes.worker():
        handle = await quotes.start(QuoteWorkflow.run, quote_breaker, 10)
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
    quotes: Workflows, quote_breaker: str
) -> None:
    """The history's failed activity carries the CircuitOpen type and the delay it asked for."""
    SERVICES[quote_breaker] = FlakyService(failures=1000)

    async with quotes.worker():
        handle = await quotes.start(QuoteWorkflow.run, quote_breaker, 3)
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
