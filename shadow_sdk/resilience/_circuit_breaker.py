"""A circuit breaker for activities and any other async or sync call.

When a dependency is down, retrying every call against it wastes the
dependency's recovery time, the worker's slots and the caller's patience. A
:class:`CircuitBreaker` watches the outcome of the calls it guards; once they
fail (or are slow) often enough it *opens* and rejects calls at once with
:class:`CircuitOpenError` for ``open_duration``, then *half-opens* to let a few
trial calls through, and *closes* again when they succeed.

Inside a Temporal activity the rejection is an
:class:`~temporalio.exceptions.ApplicationError` of type ``CircuitOpen`` whose
``next_retry_delay`` is the time until the circuit half-opens, so Temporal's
retry waits exactly that long instead of hammering the dependency; workflows
need no change. :func:`circuit_breaker` hands every activity of a worker process
the same breaker per dependency, and a :class:`RedisCircuitStore` lets one
process's discovery protect the whole fleet.

Transitions are logged on the ``shadow_sdk.resilience`` logger and, with the
calls' outcomes, exported as ``shadow_circuit_breaker_*`` metrics. A breaker
guards every call of an activity, so a call takes the lock twice (to be let in,
to record its outcome) and touches logs and metric objects only on a change.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar, Unpack, overload

import temporalio.exceptions
import temporalio.runtime

from shadow_sdk.resilience._circuit_config import CircuitBreakerConfig, CircuitBreakerOptions
from shadow_sdk.resilience._circuit_reports import (
    CANCELLED,
    FAILURE,
    IGNORED,
    REJECTED,
    SUCCESS,
    BreakerMetrics,
    Transition,
    log_store_available,
    log_store_unavailable,
)
from shadow_sdk.resilience._circuit_state import CircuitOpenError, CircuitState, CircuitStats
from shadow_sdk.resilience._circuit_store import DEFAULT, CircuitStore
from shadow_sdk.resilience._circuit_windows import CountWindow, TimeWindow, Window

P = ParamSpec("P")
T = TypeVar("T")

_CLOSED, _OPEN, _HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

_Permit = tuple[int, bool, float]
"""What admission hands a call: the generation it was let in at, whether it is a trial, when."""

# The permits of the `async with` blocks the current task is in, innermost last.
_ACTIVE: contextvars.ContextVar[tuple[tuple[CircuitBreaker, _Permit], ...]] = (
    contextvars.ContextVar("shadow_sdk_circuit_breaker_blocks", default=())
)


class CircuitBreaker:
    """Stops calling a failing dependency for a while, then tries it again.

    Guard a call with :meth:`call` (async) or :meth:`call_sync`, decorate a
    function with the breaker, or guard a block with ``async with breaker:``::

        payments = circuit_breaker("payments", window_size=20, open_duration=30)

        @activity.defn
        async def charge(order: Order) -> Receipt:
            return await payments.call(gateway.charge, order)

    A rejected call raises :class:`CircuitOpenError`. The options are those of
    :class:`CircuitBreakerConfig`, which says how the breaker decides; durations
    take seconds or a :class:`~datetime.timedelta`.

    Concurrent calls are never serialised: the breaker holds its lock only for
    its bookkeeping, never while a guarded call runs. The lock is a
    :class:`threading.Lock`, so one breaker can guard async activities on the
    event loop and sync activities in a thread pool at once.

    Args:
        name: Names the breaker in errors, logs and metrics; one per dependency.
        **options: See :class:`CircuitBreakerConfig`.

    Attributes:
        name: The breaker's name.
        config: The validated configuration.
        store: The shared store given in the options, or ``None``.

    Raises:
        ValueError: ``name`` is empty, or an option is invalid.
    """

    def __init__(self, name: str, **options: Unpack[CircuitBreakerOptions]) -> None:
        if not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.config = config = CircuitBreakerConfig(**options)
        self.store = config.store
        self._clock = config.clock
        self._sync_seconds = config.sync_interval.total_seconds()
        self._open_seconds = config.open_duration.total_seconds()
        self._slow_seconds = (
            math.inf
            if config.slow_call_duration is None
            else config.slow_call_duration.total_seconds()
        )
        self._window: Window | None = None
        if config.window_size is not None:
            self._window = CountWindow(config.window_size)
        elif config.window_duration is not None:
            self._window = TimeWindow(int(config.window_duration.total_seconds()))
        self._minimum_calls = config.minimum_calls or 0
        self._failure_threshold = config.failure_rate_threshold or 1.0
        self._slow_threshold = config.slow_call_rate_threshold
        self._max_trials = config.half_open_max_calls
        self._ignore = config.ignore_exceptions
        self._record_exceptions = config.record_exceptions

        # Everything below is guarded by _lock.
        self._lock = threading.Lock()
        self._state = _CLOSED
        # Bumped at every transition: a call admitted before one does not count after it.
        self._generation = 0
        self._open_until = 0.0
        self._consecutive = 0
        self._trials = 0
        self._trial_successes = 0
        self._last_sync = -math.inf
        # The latest open-until time published or adopted; older ones are stale.
        self._last_shared_until = 0.0
        self._metrics: BreakerMetrics | None = None
        # Transitions made with the lock held, logged once it is released.
        self._pending: list[Transition] = []
        # Touched only on the event loop.
        self._store_failing = False

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self.state.value}>"

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose time is up reads half-open."""
        with self._lock:
            self._advance(self._clock())
            state = self._state
        self._announce()
        return state

    @property
    def retry_after(self) -> timedelta | None:
        """How long until the open circuit half-opens; ``None`` unless it is open."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            remaining = self._open_until - now if self._state is _OPEN else None
        self._announce()
        return None if remaining is None else timedelta(seconds=remaining)

    @property
    def stats(self) -> CircuitStats:
        """A consistent snapshot of the state and the window's counts."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            calls, failures, slow = (0, 0, 0) if self._window is None else self._window.totals(now)
            stats = CircuitStats(
                state=self._state,
                calls=calls,
                failures=failures,
                slow_calls=slow,
                consecutive_failures=self._consecutive,
                trial_calls=self._trials if self._state is _HALF_OPEN else 0,
            )
        self._announce()
        return stats

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` if the circuit lets it through.

        Returns:
            What ``fn`` returns.

        Raises:
            CircuitOpenError: The circuit rejected the call; ``fn`` was not called.
        """
        store = self.store or DEFAULT.store
        if store is not None and self._clock() - self._last_sync >= self._sync_seconds:
            await self._sync_from_store(store)
        permit = self._acquire()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            await self._finish_async(permit, error)
            raise
        published = self._finish(permit, None)
        if published is not None:
            await self._publish(published)
        return result

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` if the circuit lets it through; safe from any thread.

        Uses local state only: it neither reads nor publishes to the store.

        Returns:
            What ``fn`` returns.

        Raises:
            CircuitOpenError: The circuit rejected the call; ``fn`` was not called.
        """
        permit = self._acquire()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            self._finish(permit, error)
            raise
        self._finish(permit, None)
        return result

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Guard every call of ``fn``, an async or a sync function, keeping its signature."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call(fn, *args, **kwargs)

            return guarded_async

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call_sync(fn, *args, **kwargs)

        return guarded

    async def __aenter__(self) -> Self:
        store = self.store or DEFAULT.store
        if store is not None and self._clock() - self._last_sync >= self._sync_seconds:
            await self._sync_from_store(store)
        permit = self._acquire()
        _ACTIVE.set((*_ACTIVE.get(), (self, permit)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        active = _ACTIVE.get()
        for index in range(len(active) - 1, -1, -1):
            if active[index][0] is self:
                permit = active[index][1]
                _ACTIVE.set(active[:index] + active[index + 1 :])
                break
        else:
            raise RuntimeError(f"circuit breaker {self.name!r} exited a block it did not enter")
        await self._finish_async(permit, exc)

    # Admission and outcomes.

    def _acquire(self) -> _Permit:
        with self._lock:
            now = self._clock()
            if self._state is _CLOSED:
                return (self._generation, False, now)
            self._advance(now)  # An open circuit whose time is up half-opens.
            if (
                self._state is _HALF_OPEN
                and self._trials + self._trial_successes < self._max_trials
            ):
                self._trials += 1
                permit: _Permit | None = (self._generation, True, now)
            else:
                permit = None
                remaining = self._open_until - now if self._state is _OPEN else 0.0
            metrics = self._metrics_locked()
        self._announce()
        if permit is None:
            metrics.calls[REJECTED].add(1)
            raise CircuitOpenError(self.name, timedelta(seconds=remaining))
        return permit

    async def _finish_async(self, permit: _Permit, error: BaseException | None) -> None:
        published = self._finish(permit, error)
        if published is not None:
            await self._publish(published)

    def _finish(self, permit: _Permit, error: BaseException | None) -> float | None:
        """Record a call's outcome; returns the open-until time to publish, if it opened."""
        if error is None:
            outcome, counts = SUCCESS, True
        else:
            outcome = self._classify(error)
            counts = outcome is SUCCESS or outcome is FAILURE
        published: float | None = None
        generation, trial, started = permit
        with self._lock:
            now = self._clock()
            slow = counts and now - started > self._slow_seconds
            if generation == self._generation:
                if trial:
                    published = self._finish_trial(now, outcome, error, slow, now - started)
                elif counts:
                    published = self._record(now, outcome is FAILURE, slow)
            metrics = self._metrics or self._metrics_locked()
        metrics.calls[outcome].add(1)
        if slow:
            metrics.slow.add(1)
        if self._pending:
            self._announce()
        return published

    def _classify(self, error: BaseException) -> str:
        if not isinstance(error, Exception) or isinstance(
            error, temporalio.exceptions.CancelledError
        ):
            return CANCELLED
        if isinstance(error, self._ignore):
            return IGNORED
        if isinstance(error, self._record_exceptions):
            return FAILURE
        return SUCCESS

    def _record(self, now: float, failed: bool, slow: bool) -> float | None:
        self._consecutive = self._consecutive + 1 if failed else 0
        window = self._window
        if window is None:
            limit = self.config.consecutive_failures
            if limit is not None and self._consecutive >= limit:
                return self._open(now, f"{self._consecutive} consecutive failures")
            return None
        calls, failures, slow_calls = window.add(now, failed, slow)
        # Both thresholds are above 0: a window without failures or slow calls stays closed.
        if calls < self._minimum_calls or not (failures or slow_calls):
            return None
        if failures / calls >= self._failure_threshold:
            threshold = self._failure_threshold
            reason = f"failure rate {failures / calls:.3g} >= {threshold:g} over {calls} calls"
            return self._open(now, reason)
        slow_threshold = self._slow_threshold
        if slow_threshold is not None and slow_calls / calls >= slow_threshold:
            reason = (
                f"slow call rate {slow_calls / calls:.3g} >= {slow_threshold:g} over {calls} "
                f"calls (slower than {self._slow_seconds:g} s)"
            )
            return self._open(now, reason)
        return None

    def _finish_trial(
        self, now: float, outcome: str, error: BaseException | None, slow: bool, duration: float
    ) -> float | None:
        self._trials -= 1
        if outcome is FAILURE:
            return self._open(now, f"trial call failed ({type(error).__name__})")
        if slow:
            reason = f"trial call was slow ({duration:.3g} s > {self._slow_seconds:g} s)"
            return self._open(now, reason)
        if outcome is SUCCESS:
            self._trial_successes += 1
            if self._trial_successes >= self._max_trials:
                self._transition(
                    _CLOSED, f"{_plural(self._trial_successes, 'trial call')} succeeded"
                )
                self._consecutive = 0
                if self._window is not None:
                    self._window.clear()
        return None

    # Transitions; called with _lock held.

    def _advance(self, now: float) -> None:
        if self._state is _OPEN and now >= self._open_until:
            self._trials = 0
            self._trial_successes = 0
            self._transition(
                _HALF_OPEN,
                f"open for {self._open_seconds:g} s; admitting "
                f"{_plural(self._max_trials, 'trial call')}",
            )

    def _open(self, now: float, reason: str) -> float | None:
        """Open for ``open_duration``; returns the open-until time to publish, if shared."""
        self._open_until = now + self._open_seconds
        self._transition(_OPEN, f"{reason}; rejecting calls for {self._open_seconds:g} s")
        if (self.store or DEFAULT.store) is None:
            return None
        until = time.time() + self._open_seconds
        self._last_shared_until = until
        return until

    def _transition(self, to: CircuitState, reason: str) -> None:
        self._pending.append(Transition(self._state, to, reason))
        self._state = to
        self._generation += 1
        metrics = self._metrics_locked()
        metrics.state.set(to.gauge_value)
        metrics.transitions[to].add(1)

    def _metrics_locked(self) -> BreakerMetrics:
        metrics = self._metrics
        if metrics is None:
            meter = self.config.metric_meter
            if meter is None:
                meter = temporalio.runtime.Runtime.default().metric_meter
            metrics = self._metrics = BreakerMetrics(meter, self.name)
            metrics.state.set(self._state.gauge_value)
        return metrics

    def _announce(self) -> None:
        """Log the transitions made since the last call, outside the lock."""
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, []
        for transition in pending:
            transition.log(self.name)

    # The shared store.

    async def _sync_from_store(self, store: CircuitStore) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last_sync < self._sync_seconds:
                return
            # Claimed before the await, so concurrent callers do not read too.
            self._last_sync = now
        try:
            until = await store.open_until(self.name)
        except Exception as error:  # the store never fails a call
            self._store_unavailable(error)
            return
        self._store_available()
        if until is not None:
            self._adopt(until)

    async def _publish(self, until: float) -> None:
        """Publish that the circuit is open until ``until``, if it is shared."""
        store = self.store or DEFAULT.store
        if store is None:
            return
        try:
            await store.publish_open(self.name, until)
        except Exception as error:  # the store never fails a call
            self._store_unavailable(error)
        else:
            self._store_available()

    def _adopt(self, until: float) -> None:
        """Open until ``until`` (epoch seconds) if another process published it."""
        with self._lock:
            if until <= self._last_shared_until:
                return
            self._last_shared_until = until
            remaining = until - time.time()
            if remaining <= 0:
                return
            now = self._clock()
            if self._state is _OPEN:
                self._open_until = max(self._open_until, now + remaining)
            else:
                self._open_until = now + remaining
                at = datetime.fromtimestamp(until, UTC).isoformat(timespec="milliseconds")
                self._transition(
                    _OPEN,
                    f"another process opened it until {at}; rejecting calls for {remaining:.3g} s",
                )
        self._announce()

    def _store_unavailable(self, error: Exception) -> None:
        if not self._store_failing:  # One warning per streak of errors.
            self._store_failing = True
            log_store_unavailable(self.name, error)

    def _store_available(self) -> None:
        if self._store_failing:
            self._store_failing = False
            log_store_available(self.name)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
