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

import asyncio
import contextvars
import dataclasses
import enum
import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    ParamSpec,
    Protocol,
    Self,
    TypedDict,
    TypeVar,
    Unpack,
    overload,
)

import temporalio.common
import temporalio.exceptions
import temporalio.runtime

from shadow_sdk._exceptions import ShadowError

if TYPE_CHECKING:
    import redis.asyncio

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("shadow_sdk.resilience")

STATE_METRIC = "shadow_circuit_breaker_state"
TRANSITIONS_METRIC = "shadow_circuit_breaker_transitions"
CALLS_METRIC = "shadow_circuit_breaker_calls"
SLOW_CALLS_METRIC = "shadow_circuit_breaker_slow_calls"

_DEFAULT_WINDOW_SIZE = 100
_DEFAULT_MINIMUM_CALLS = 10
_DEFAULT_FAILURE_RATE = 0.5


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
class CircuitBreakerConfig:
    """How a circuit breaker decides; validated, with defaults resolved.

    Failures are detected one of three ways, chosen by which parameter is set
    (a count window of 100 calls when none is):

    * ``window_size``: the last N calls;
    * ``window_duration``: the calls of the last T seconds, kept in one bucket
      per second (so memory does not grow with traffic, and a call leaves the
      window between T - 1 and T seconds after it ended);
    * ``consecutive_failures``: N failures in a row.

    A sliding window opens the circuit once it holds at least ``minimum_calls``
    calls and their failure rate reaches ``failure_rate_threshold``, or, with
    ``slow_call_duration``, their slow call rate reaches
    ``slow_call_rate_threshold``.

    Once open for ``open_duration`` the circuit half-opens and admits up to
    ``half_open_max_calls`` trial calls at once. It closes when that many trials
    have succeeded, and opens again at the first trial that fails (or is slow).
    A trial that ends with an ignored exception, or is cancelled, frees its
    place for another.

    An exception counts as a failure if it is an instance of
    ``record_exceptions`` and not of ``ignore_exceptions``; an ignored exception
    counts neither way, and any other exception counts as a success (the call
    reached the dependency and got an answer). Cancellation, whether
    :class:`asyncio.CancelledError` or the
    :class:`temporalio.exceptions.CancelledError` a cancelled sync activity
    raises, never counts, nor does any exception that is not an
    :class:`Exception` (``KeyboardInterrupt``, ``SystemExit``).

    Attributes:
        window_size: Calls in a count-based window, or ``None``.
        window_duration: Length of a time-based window (whole seconds), or ``None``.
        consecutive_failures: Failures in a row that open the circuit, or ``None``.
        failure_rate_threshold: Failure rate, in (0, 1], that opens the circuit;
            0.5 by default; ``None`` with ``consecutive_failures``.
        minimum_calls: Calls the window must hold before any verdict; 10 by
            default (at most ``window_size``); ``None`` with ``consecutive_failures``.
        slow_call_duration: A call that takes longer is slow; ``None`` turns slow
            call detection off.
        slow_call_rate_threshold: Slow call rate, in (0, 1], that opens the
            circuit; 1.0 by default when ``slow_call_duration`` is set.
        open_duration: How long the circuit stays open before it half-opens.
        half_open_max_calls: Trial calls admitted at once when half-open, and
            successes needed to close.
        record_exceptions: Exception types that count as failures.
        ignore_exceptions: Exception types that count as neither success nor
            failure, such as a caller's validation errors; they win over
            ``record_exceptions``.
    """

    window_size: int | None = None
    window_duration: timedelta | None = None
    consecutive_failures: int | None = None
    failure_rate_threshold: float | None = None
    minimum_calls: int | None = None
    slow_call_duration: timedelta | None = None
    slow_call_rate_threshold: float | None = None
    open_duration: timedelta = timedelta(seconds=30)
    half_open_max_calls: int = 3
    record_exceptions: tuple[type[Exception], ...] = (Exception,)
    ignore_exceptions: tuple[type[Exception], ...] = ()

    def __post_init__(self) -> None:
        detectors = [
            name
            for name in ("window_size", "window_duration", "consecutive_failures")
            if getattr(self, name) is not None
        ]
        if len(detectors) > 1:
            raise ValueError(
                f"{' and '.join(detectors)}: give only one of window_size, window_duration "
                "and consecutive_failures"
            )
        if not detectors:
            self._set("window_size", _DEFAULT_WINDOW_SIZE)
        if self.consecutive_failures is not None:
            _check_count("consecutive_failures", self.consecutive_failures)
            for name in ("failure_rate_threshold", "minimum_calls", "slow_call_duration"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} needs a sliding window (window_size or window_duration); "
                        "consecutive_failures counts failures in a row"
                    )
        else:
            self._check_window()
        if self.slow_call_duration is None:
            if self.slow_call_rate_threshold is not None:
                raise ValueError("slow_call_rate_threshold needs slow_call_duration")
        else:
            _check_positive_duration("slow_call_duration", self.slow_call_duration)
            if self.slow_call_rate_threshold is None:
                self._set("slow_call_rate_threshold", 1.0)
            _check_rate("slow_call_rate_threshold", self.slow_call_rate_threshold)
        _check_positive_duration("open_duration", self.open_duration)
        _check_count("half_open_max_calls", self.half_open_max_calls)
        self._set("record_exceptions", _check_types("record_exceptions", self.record_exceptions))
        self._set("ignore_exceptions", _check_types("ignore_exceptions", self.ignore_exceptions))
        if not self.record_exceptions:
            raise ValueError("record_exceptions must name at least one exception type")

    def _check_window(self) -> None:
        if self.window_size is not None:
            _check_count("window_size", self.window_size)
        if self.window_duration is not None:
            _check_positive_duration("window_duration", self.window_duration)
            seconds = self.window_duration.total_seconds()
            if seconds != int(seconds):
                raise ValueError(
                    f"window_duration must be whole seconds (the window keeps one bucket "
                    f"per second), got {seconds:g} s"
                )
        if self.failure_rate_threshold is None:
            self._set("failure_rate_threshold", _DEFAULT_FAILURE_RATE)
        _check_rate("failure_rate_threshold", self.failure_rate_threshold)
        if self.minimum_calls is None:
            default = _DEFAULT_MINIMUM_CALLS
            if self.window_size is not None:
                default = min(default, self.window_size)
            self._set("minimum_calls", default)
        minimum_calls = _check_count("minimum_calls", self.minimum_calls)
        if self.window_size is not None and minimum_calls > self.window_size:
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) must not exceed window_size "
                f"({self.window_size}): the window could never hold enough calls"
            )

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)


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


class CircuitStore(Protocol):
    """Where breakers in several processes share which circuits are open, and until when.

    Times are wall-clock epoch seconds, the only clock processes share. A store
    may raise anything: breakers log it and carry on with their local state.
    """

    async def open_until(self, name: str) -> float | None:
        """When the open circuit ``name`` half-opens, or ``None`` if none is published."""
        ...

    async def publish_open(self, name: str, until: float) -> None:
        """Publish that circuit ``name`` is open until ``until``; forget it after that."""
        ...


class RedisCircuitStore:
    """Shares open circuits through Redis, so one worker's discovery protects the fleet.

    When a breaker opens it sets ``<prefix>:<name>`` to the epoch second at
    which it half-opens, with a matching expiry (``SET ... PX``); nothing is
    ever deleted, the key simply expires. Breakers read the key at most once per
    ``sync_interval``, before an async call, and open locally until the
    published time if it is later than anything they have seen: Redis adds no
    round trip to the other calls. Half-open trials stay per process; a process
    whose trial fails opens again and publishes the new time.

    Commands are bounded by ``timeout`` and never retried, so an unreachable
    Redis delays one call per sync interval by at most that much; the breaker
    logs the first error of a streak and falls back to its local state.

    Needs the ``redis`` package (the ``shadow-sdk[redis]`` extra).

    Args:
        url_or_client: A ``redis://`` URL, or a ``redis.asyncio.Redis`` client
            that the caller owns and closes.
        prefix: Prefix of the keys, so that services sharing a Redis keep apart.
        timeout: Bound of each command, in seconds or as a timedelta.
    """

    def __init__(
        self,
        url_or_client: str | redis.asyncio.Redis,
        *,
        prefix: str = "shadow:circuit",
        timeout: timedelta | float = 1.0,
    ) -> None:
        try:
            import redis.asyncio  # noqa: PLC0415 - an optional dependency
            import redis.asyncio.retry  # noqa: PLC0415
            import redis.backoff  # noqa: PLC0415
        except ImportError as error:
            raise ImportError(
                "RedisCircuitStore needs the redis package: install shadow-sdk[redis]"
            ) from error
        if not prefix:
            raise ValueError("prefix must not be empty")
        self.prefix = prefix
        self.timeout = _to_timedelta("timeout", timeout)
        _check_positive_duration("timeout", self.timeout)
        seconds = self.timeout.total_seconds()
        self._owned = isinstance(url_or_client, str)
        if isinstance(url_or_client, str):
            self.client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
                url_or_client,
                socket_timeout=seconds,
                socket_connect_timeout=seconds,
                retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
            )
        else:
            self.client = url_or_client

    def key(self, name: str) -> str:
        """The Redis key of circuit ``name``."""
        return f"{self.prefix}:{name}"

    async def open_until(self, name: str) -> float | None:
        """See :class:`CircuitStore`."""
        async with asyncio.timeout(self.timeout.total_seconds()):
            value = await self.client.get(self.key(name))
        return None if value is None else float(value)

    async def publish_open(self, name: str, until: float) -> None:
        """See :class:`CircuitStore`."""
        milliseconds = math.ceil((until - time.time()) * 1000)
        if milliseconds <= 0:
            return
        async with asyncio.timeout(self.timeout.total_seconds()):
            await self.client.set(self.key(name), repr(until), px=milliseconds)

    async def aclose(self) -> None:
        """Close the client if the store made it from a URL."""
        if self._owned:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class CircuitBreaker:
    """Stops calling a failing dependency for a while, then tries it again.

    Guard a call with :meth:`call` (async) or :meth:`call_sync`, decorate a
    function with the breaker, or guard a block with ``async with breaker:``::

        payments = circuit_breaker("payments", window_size=20, open_duration=30)

        @activity.defn
        async def charge(order: Order) -> Receipt:
            return await payments.call(gateway.charge, order)

    A rejected call raises :class:`CircuitOpenError`. See
    :class:`CircuitBreakerConfig` for how the breaker decides; durations take
    seconds or a :class:`~datetime.timedelta`.

    Concurrent calls are never serialised: the breaker holds its lock only for
    its bookkeeping, never while a guarded call runs. The lock is a
    :class:`threading.Lock`, so one breaker can guard async activities on the
    event loop and sync activities in a thread pool at once.

    Args:
        name: Names the breaker in errors, logs and metrics; one per dependency.
        window_size: See :class:`CircuitBreakerConfig`.
        window_duration: See :class:`CircuitBreakerConfig`.
        consecutive_failures: See :class:`CircuitBreakerConfig`.
        failure_rate_threshold: See :class:`CircuitBreakerConfig`.
        minimum_calls: See :class:`CircuitBreakerConfig`.
        slow_call_duration: See :class:`CircuitBreakerConfig`.
        slow_call_rate_threshold: See :class:`CircuitBreakerConfig`.
        open_duration: See :class:`CircuitBreakerConfig`; 30 s by default.
        half_open_max_calls: See :class:`CircuitBreakerConfig`; 3 by default.
        record_exceptions: See :class:`CircuitBreakerConfig`.
        ignore_exceptions: See :class:`CircuitBreakerConfig`.
        metric_meter: Where to export metrics; ``None`` uses the meter of
            Temporal's default runtime, looked up at first use so that a worker
            process that installs its runtime as the default before starting
            workers gets them on its /metrics.
        store: Shares open circuits with other processes (see
            :class:`RedisCircuitStore`); only async calls use it, :meth:`call_sync`
            keeps to local state. ``None`` uses the process's default store, if
            any (:func:`set_default_circuit_store`; ``run_worker`` sets one when
            ``REDIS_URL`` is configured).
        sync_interval: The store is read at most once per this interval.
        clock: Monotonic seconds; tests pass a fake one to drive time exactly.

    Attributes:
        name: The breaker's name.
        config: The validated configuration.
        store: The shared store, or ``None``.
    """

    def __init__(
        self,
        name: str,
        *,
        window_size: int | None = None,
        window_duration: timedelta | float | None = None,
        consecutive_failures: int | None = None,
        failure_rate_threshold: float | None = None,
        minimum_calls: int | None = None,
        slow_call_duration: timedelta | float | None = None,
        slow_call_rate_threshold: float | None = None,
        open_duration: timedelta | float = timedelta(seconds=30),
        half_open_max_calls: int = 3,
        record_exceptions: tuple[type[Exception], ...] = (Exception,),
        ignore_exceptions: tuple[type[Exception], ...] = (),
        metric_meter: temporalio.common.MetricMeter | None = None,
        store: CircuitStore | None = None,
        sync_interval: timedelta | float = timedelta(seconds=1),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.config = CircuitBreakerConfig(
            window_size=window_size,
            window_duration=_to_timedelta_or_none("window_duration", window_duration),
            consecutive_failures=consecutive_failures,
            failure_rate_threshold=failure_rate_threshold,
            minimum_calls=minimum_calls,
            slow_call_duration=_to_timedelta_or_none("slow_call_duration", slow_call_duration),
            slow_call_rate_threshold=slow_call_rate_threshold,
            open_duration=_to_timedelta("open_duration", open_duration),
            half_open_max_calls=half_open_max_calls,
            record_exceptions=record_exceptions,
            ignore_exceptions=ignore_exceptions,
        )
        self.store = store
        self._sync_interval = _to_timedelta("sync_interval", sync_interval)
        _check_positive_duration("sync_interval", self._sync_interval)
        self._metric_meter = metric_meter
        self._clock = clock

        config = self.config
        self._open_seconds = config.open_duration.total_seconds()
        self._slow_seconds = (
            math.inf
            if config.slow_call_duration is None
            else config.slow_call_duration.total_seconds()
        )
        self._window: _CountWindow | _TimeWindow | None = None
        if config.window_size is not None:
            self._window = _CountWindow(config.window_size)
        elif config.window_duration is not None:
            self._window = _TimeWindow(int(config.window_duration.total_seconds()))

        # Everything below is guarded by _lock.
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        # Bumped at every transition: a call admitted before one does not count after it.
        self._generation = 0
        self._open_until = 0.0
        self._consecutive = 0
        self._trials = 0
        self._trial_successes = 0
        self._last_sync = -math.inf
        # The latest open-until time published or adopted; older ones are stale.
        self._last_shared_until = 0.0
        self._metrics: _Metrics | None = None
        # Touched only on the event loop.
        self._store_failing = False

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self.state.value}>"

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose time is up reads half-open."""
        transitions: list[_Transition] = []
        with self._lock:
            self._advance(self._clock(), transitions)
            state = self._state
        _announce(self.name, transitions)
        return state

    @property
    def retry_after(self) -> timedelta | None:
        """How long until the open circuit half-opens; ``None`` unless it is open."""
        transitions: list[_Transition] = []
        with self._lock:
            now = self._clock()
            self._advance(now, transitions)
            remaining = self._open_until - now if self._state is CircuitState.OPEN else None
        _announce(self.name, transitions)
        return None if remaining is None else timedelta(seconds=remaining)

    @property
    def stats(self) -> CircuitStats:
        """A consistent snapshot of the state and the window's counts."""
        transitions: list[_Transition] = []
        with self._lock:
            now = self._clock()
            self._advance(now, transitions)
            calls, failures, slow = (0, 0, 0) if self._window is None else self._window.totals(now)
            stats = CircuitStats(
                state=self._state,
                calls=calls,
                failures=failures,
                slow_calls=slow,
                consecutive_failures=self._consecutive,
                trial_calls=self._trials if self._state is CircuitState.HALF_OPEN else 0,
            )
        _announce(self.name, transitions)
        return stats

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` if the circuit lets it through.

        Returns:
            What ``fn`` returns.

        Raises:
            CircuitOpenError: The circuit rejected the call; ``fn`` was not called.
        """
        await self._sync_from_store()
        permit = self._acquire()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            await self._finish_async(permit, error)
            raise
        await self._finish_async(permit, None)
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
        await self._sync_from_store()
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
        transitions: list[_Transition] = []
        permit: _Permit | None = None
        with self._lock:
            metrics = self._metrics_locked()
            now = self._clock()
            self._advance(now, transitions)
            if self._state is CircuitState.CLOSED:
                permit = _Permit(self._generation, trial=False, started=now)
            elif (
                self._state is CircuitState.HALF_OPEN
                and self._trials + self._trial_successes < self.config.half_open_max_calls
            ):
                self._trials += 1
                permit = _Permit(self._generation, trial=True, started=now)
            else:
                remaining = self._open_until - now if self._state is CircuitState.OPEN else 0.0
        _announce(self.name, transitions)
        if permit is None:
            metrics.calls[_REJECTED].add(1)
            raise CircuitOpenError(self.name, timedelta(seconds=remaining))
        return permit

    async def _finish_async(self, permit: _Permit, error: BaseException | None) -> None:
        published = self._finish(permit, error)
        store = self._shared_store()
        if published is not None and store is not None:
            try:
                await store.publish_open(self.name, published)
            except Exception as store_error:  # the store never fails a call
                self._store_unavailable(store_error)
            else:
                self._store_available()

    def _finish(self, permit: _Permit, error: BaseException | None) -> float | None:
        """Record a call's outcome; returns the open-until time to publish, if it opened."""
        outcome = self._classify(error)
        transitions: list[_Transition] = []
        published: float | None = None
        slow = False
        with self._lock:
            now = self._clock()
            duration = now - permit.started
            if outcome in (_SUCCESS, _FAILURE):
                slow = duration > self._slow_seconds
            if permit.generation == self._generation:
                if permit.trial:
                    published = self._finish_trial(
                        now, transitions, outcome=outcome, error=error, slow=slow, duration=duration
                    )
                elif outcome in (_SUCCESS, _FAILURE):
                    published = self._record(now, outcome == _FAILURE, slow, transitions)
        metrics = self._metrics
        if metrics is not None:
            metrics.calls[outcome].add(1)
            if slow:
                metrics.slow.add(1)
        _announce(self.name, transitions)
        return published

    def _classify(self, error: BaseException | None) -> str:
        if error is None:
            return _SUCCESS
        if not isinstance(error, Exception) or isinstance(
            error, temporalio.exceptions.CancelledError
        ):
            return _CANCELLED
        if isinstance(error, self.config.ignore_exceptions):
            return _IGNORED
        if isinstance(error, self.config.record_exceptions):
            return _FAILURE
        return _SUCCESS

    def _record(
        self, now: float, failed: bool, slow: bool, transitions: list[_Transition]
    ) -> float | None:
        self._consecutive = self._consecutive + 1 if failed else 0
        config = self.config
        if self._window is None:
            if config.consecutive_failures is not None and (
                self._consecutive >= config.consecutive_failures
            ):
                return self._open(now, f"{self._consecutive} consecutive failures", transitions)
            return None
        self._window.add(now, failed=failed, slow=slow)
        calls, failures, slow_calls = self._window.totals(now)
        if calls < (config.minimum_calls or 0):
            return None
        threshold = config.failure_rate_threshold or 1.0
        if failures / calls >= threshold:
            reason = f"failure rate {failures / calls:.3g} >= {threshold:g} over {calls} calls"
            return self._open(now, reason, transitions)
        slow_threshold = config.slow_call_rate_threshold
        if slow_threshold is not None and slow_calls / calls >= slow_threshold:
            reason = (
                f"slow call rate {slow_calls / calls:.3g} >= {slow_threshold:g} over {calls} "
                f"calls (slower than {self._slow_seconds:g} s)"
            )
            return self._open(now, reason, transitions)
        return None

    def _finish_trial(
        self,
        now: float,
        transitions: list[_Transition],
        *,
        outcome: str,
        error: BaseException | None,
        slow: bool,
        duration: float,
    ) -> float | None:
        self._trials -= 1
        if outcome == _FAILURE:
            return self._open(now, f"trial call failed ({type(error).__name__})", transitions)
        if slow:
            reason = f"trial call was slow ({duration:.3g} s > {self._slow_seconds:g} s)"
            return self._open(now, reason, transitions)
        if outcome == _SUCCESS:
            self._trial_successes += 1
            if self._trial_successes >= self.config.half_open_max_calls:
                self._transition(
                    CircuitState.CLOSED,
                    f"{_plural(self._trial_successes, 'trial call')} succeeded",
                    transitions,
                )
                self._consecutive = 0
                if self._window is not None:
                    self._window.clear()
        return None

    # Transitions; called with _lock held.

    def _advance(self, now: float, transitions: list[_Transition]) -> None:
        if self._state is CircuitState.OPEN and now >= self._open_until:
            self._trials = 0
            self._trial_successes = 0
            self._transition(
                CircuitState.HALF_OPEN,
                f"open for {self._open_seconds:g} s; admitting "
                f"{_plural(self.config.half_open_max_calls, 'trial call')}",
                transitions,
            )

    def _open(self, now: float, reason: str, transitions: list[_Transition]) -> float | None:
        """Open for ``open_duration``; returns the open-until time to publish, if shared."""
        self._open_until = now + self._open_seconds
        self._transition(
            CircuitState.OPEN,
            f"{reason}; rejecting calls for {self._open_seconds:g} s",
            transitions,
        )
        if self._shared_store() is None:
            return None
        until = time.time() + self._open_seconds
        self._last_shared_until = until
        return until

    def _transition(self, to: CircuitState, reason: str, transitions: list[_Transition]) -> None:
        transitions.append(_Transition(self._state, to, reason))
        self._state = to
        self._generation += 1
        metrics = self._metrics_locked()
        metrics.state.set(to.gauge_value)
        metrics.transitions[to].add(1)

    def _metrics_locked(self) -> _Metrics:
        metrics = self._metrics
        if metrics is None:
            meter = self._metric_meter
            if meter is None:
                meter = temporalio.runtime.Runtime.default().metric_meter
            metrics = self._metrics = _Metrics(meter, self.name)
            metrics.state.set(self._state.gauge_value)
        return metrics

    # The shared store.

    def _shared_store(self) -> CircuitStore | None:
        return self.store if self.store is not None else _default_store

    async def _sync_from_store(self) -> None:
        store = self._shared_store()
        if store is None:
            return
        with self._lock:
            now = self._clock()
            if now - self._last_sync < self._sync_interval.total_seconds():
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

    def _adopt(self, until: float) -> None:
        """Open until ``until`` (epoch seconds) if another process published it."""
        transitions: list[_Transition] = []
        with self._lock:
            if until <= self._last_shared_until:
                return
            self._last_shared_until = until
            remaining = until - time.time()
            if remaining <= 0:
                return
            now = self._clock()
            if self._state is CircuitState.OPEN:
                self._open_until = max(self._open_until, now + remaining)
            else:
                self._open_until = now + remaining
                at = datetime.fromtimestamp(until, UTC).isoformat(timespec="milliseconds")
                self._transition(
                    CircuitState.OPEN,
                    f"another process opened it until {at}; rejecting calls for {remaining:.3g} s",
                    transitions,
                )
        _announce(self.name, transitions)

    def _store_unavailable(self, error: Exception) -> None:
        if not self._store_failing:
            self._store_failing = True
            logger.warning(
                "circuit breaker %r: shared state is unavailable (%s: %s); "
                "using local state until the store answers again",
                self.name,
                type(error).__name__,
                error,
            )

    def _store_available(self) -> None:
        if self._store_failing:
            self._store_failing = False
            logger.info("circuit breaker %r: shared state is available again", self.name)


class _BreakerOptions(TypedDict, total=False):
    window_size: int | None
    window_duration: timedelta | float | None
    consecutive_failures: int | None
    failure_rate_threshold: float | None
    minimum_calls: int | None
    slow_call_duration: timedelta | float | None
    slow_call_rate_threshold: float | None
    open_duration: timedelta | float
    half_open_max_calls: int
    record_exceptions: tuple[type[Exception], ...]
    ignore_exceptions: tuple[type[Exception], ...]
    metric_meter: temporalio.common.MetricMeter | None
    store: CircuitStore | None
    sync_interval: timedelta | float
    clock: Callable[[], float]


_REGISTRY: dict[str, CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


_default_store: CircuitStore | None = None


def set_default_circuit_store(store: CircuitStore | None) -> None:
    """Share the open circuits of every breaker created without a ``store`` through ``store``.

    Breakers are usually created when activity modules are imported, before the
    process has read its settings; they look the default store up at each sync,
    so installing it at start-up reaches them all. ``None`` removes it.
    """
    global _default_store  # noqa: PLW0603  One store per process, like the breaker registry.
    _default_store = store


def circuit_breaker(name: str, **options: Unpack[_BreakerOptions]) -> CircuitBreaker:
    """The process's circuit breaker called ``name``, made with ``options`` on first use.

    Activities that call the same dependency should share one breaker, so that
    what one discovers protects the others: call this at import time or in each
    activity with the same options. Asking again with other options is a
    mistake that would silently keep the first ones, so it raises.

    Args:
        name: The breaker's name.
        **options: Keyword arguments of :class:`CircuitBreaker`.

    Returns:
        The breaker.

    Raises:
        ValueError: The options are invalid, or differ from those the breaker
            was made with.
    """
    wanted = CircuitBreaker(name, **options)
    with _REGISTRY_LOCK:
        existing = _REGISTRY.setdefault(name, wanted)
    if existing is wanted:
        return wanted
    differences = [
        f"{field} {mine!r} (asked for {theirs!r})"
        for field, mine, theirs in zip(
            _identity_fields(), _identity(existing), _identity(wanted), strict=True
        )
        if mine != theirs
    ]
    if differences:
        raise ValueError(
            f"circuit breaker {name!r} already exists with other options: "
            f"{', '.join(differences)}; ask for it with the same options everywhere, "
            "or give this dependency another name"
        )
    return existing


def _identity_fields() -> tuple[str, ...]:
    config = tuple(field.name for field in dataclasses.fields(CircuitBreakerConfig))
    return (*config, "metric_meter", "store", "sync_interval", "clock")


def _identity(breaker: CircuitBreaker) -> tuple[object, ...]:
    config = tuple(
        getattr(breaker.config, field.name) for field in dataclasses.fields(CircuitBreakerConfig)
    )
    return (
        *config,
        breaker._metric_meter,
        breaker.store,
        breaker._sync_interval,
        breaker._clock,
    )


# Internals.

_SUCCESS = "success"
_FAILURE = "failure"
_IGNORED = "ignored"
_CANCELLED = "cancelled"
_REJECTED = "rejected"
_OUTCOMES = (_SUCCESS, _FAILURE, _IGNORED, _CANCELLED, _REJECTED)

# The permits of the `async with` blocks the current task is in, innermost last.
_ACTIVE: contextvars.ContextVar[tuple[tuple[CircuitBreaker, _Permit], ...]] = (
    contextvars.ContextVar("shadow_sdk_circuit_breaker_blocks", default=())
)


@dataclass(frozen=True, slots=True)
class _Permit:
    generation: int
    trial: bool
    started: float


@dataclass(frozen=True, slots=True)
class _Transition:
    source: CircuitState
    to: CircuitState
    reason: str


def _announce(name: str, transitions: list[_Transition]) -> None:
    for transition in transitions:
        level = logging.WARNING if transition.to is CircuitState.OPEN else logging.INFO
        logger.log(
            level,
            "circuit breaker %r: %s -> %s: %s",
            name,
            transition.source.value,
            transition.to.value,
            transition.reason,
            extra={
                "circuit_breaker": name,
                "circuit_from": transition.source.value,
                "circuit_to": transition.to.value,
                "circuit_reason": transition.reason,
            },
        )


class _Metrics:
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
            for outcome in _OUTCOMES
        }
        self.slow = meter.create_counter(
            SLOW_CALLS_METRIC, "Calls through a circuit breaker slower than slow_call_duration"
        ).with_additional_attributes(breaker)


class _CountWindow:
    """The outcomes of the last ``size`` calls, as a ring of bit flags."""

    _CALL, _FAILED, _SLOW = 1, 2, 4

    def __init__(self, size: int) -> None:
        self._ring = bytearray(size)
        self._next = 0
        self._calls = self._failures = self._slow = 0

    def add(self, now: float, *, failed: bool, slow: bool) -> None:
        old = self._ring[self._next]
        if old:
            self._calls -= 1
            self._failures -= bool(old & self._FAILED)
            self._slow -= bool(old & self._SLOW)
        self._ring[self._next] = (
            self._CALL | (self._FAILED if failed else 0) | (self._SLOW if slow else 0)
        )
        self._next = (self._next + 1) % len(self._ring)
        self._calls += 1
        self._failures += failed
        self._slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return self._calls, self._failures, self._slow

    def clear(self) -> None:
        self._ring = bytearray(len(self._ring))
        self._next = 0
        self._calls = self._failures = self._slow = 0


class _TimeWindow:
    """The outcomes of the last ``seconds`` seconds, one bucket per second."""

    _latest: int | None
    _calls: int
    _failures: int
    _slow: int

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self.clear()

    def _advance(self, now: float) -> int:
        """Empty the buckets of seconds that left the window; return the bucket of ``now``."""
        second = math.floor(now)
        latest = self._latest
        if latest is None or second > latest:
            if latest is not None:
                for stale in range(latest + 1, latest + 1 + min(second - latest, self._seconds)):
                    index = stale % self._seconds
                    self._calls -= self._bucket_calls[index]
                    self._failures -= self._bucket_failures[index]
                    self._slow -= self._bucket_slow[index]
                    self._bucket_calls[index] = 0
                    self._bucket_failures[index] = 0
                    self._bucket_slow[index] = 0
            self._latest = latest = second
        return latest % self._seconds

    def add(self, now: float, *, failed: bool, slow: bool) -> None:
        index = self._advance(now)
        self._bucket_calls[index] += 1
        self._bucket_failures[index] += failed
        self._bucket_slow[index] += slow
        self._calls += 1
        self._failures += failed
        self._slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        self._advance(now)
        return self._calls, self._failures, self._slow

    def clear(self) -> None:
        # Bucket i holds second s, where s % seconds == i, while s is in the window.
        self._bucket_calls = [0] * self._seconds
        self._bucket_failures = [0] * self._seconds
        self._bucket_slow = [0] * self._seconds
        self._latest = None
        self._calls = self._failures = self._slow = 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _to_timedelta(name: str, value: timedelta | float) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be seconds or a timedelta, got {value!r}")
    return timedelta(seconds=value)


def _to_timedelta_or_none(name: str, value: timedelta | float | None) -> timedelta | None:
    return None if value is None else _to_timedelta(name, value)


def _check_positive_duration(name: str, value: object) -> None:
    if not isinstance(value, timedelta):
        raise ValueError(f"{name} must be a timedelta, got {value!r}")
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {value.total_seconds():g} s")


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _check_rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def _check_types(name: str, value: object) -> tuple[type[Exception], ...]:
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, tuple | list):
        raise ValueError(f"{name} must be a tuple of exception types, got {value!r}")
    for item in value:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            raise ValueError(
                f"{name} must hold subclasses of Exception (cancellation never counts), "
                f"got {item!r}"
            )
    return tuple(value)
