"""The options of a circuit breaker, declared once: validated, with defaults resolved.

:class:`CircuitBreakerConfig` is the one definition. Its fields are the options,
with their defaults and the types the breaker works with;
:class:`CircuitBreakerOptions` is the same list as keyword arguments, with the
types a caller may give (a duration as seconds or a timedelta). Every public
entry point takes ``**options: Unpack[CircuitBreakerOptions]``:
``CircuitBreaker(name, ...)``, ``circuit_breaker(name, ...)`` and
``CircuitBreakerConfig(...)``; a test proves that the two lists agree, name for
name and type for type.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict, Unpack

import temporalio.common

from shadow_sdk._duration import Duration, to_timedelta_or_none
from shadow_sdk.resilience._circuit_store import CircuitStore

_DEFAULT_WINDOW_SIZE = 100
_DEFAULT_MINIMUM_CALLS = 10
_DEFAULT_FAILURE_RATE = 0.5
_DURATION = {"duration": True}


class CircuitBreakerOptions(TypedDict, total=False):
    """The options of a circuit breaker, as keyword arguments of every entry point.

    They are taken by ``CircuitBreaker(name, ...)``, ``circuit_breaker(name, ...)``
    and ``CircuitBreakerConfig(...)``.

    Each is an attribute of :class:`CircuitBreakerConfig`, documented there, with
    the same default. Durations may be given as seconds (``int`` or ``float``) or
    as a :class:`~datetime.timedelta`; the configuration holds timedeltas.
    """

    window_size: int | None
    window_duration: Duration | None
    consecutive_failures: int | None
    failure_rate_threshold: float | None
    minimum_calls: int | None
    slow_call_duration: Duration | None
    slow_call_rate_threshold: float | None
    open_duration: Duration
    half_open_max_calls: int
    record_exceptions: tuple[type[Exception], ...]
    ignore_exceptions: tuple[type[Exception], ...]
    metric_meter: temporalio.common.MetricMeter | None
    store: CircuitStore | None
    sync_interval: Duration
    clock: Callable[[], float]


@dataclass(frozen=True, init=False)
class CircuitBreakerConfig:
    """How a circuit breaker decides, reports and shares; validated, with defaults resolved.

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

    Takes the keyword arguments of :class:`CircuitBreakerOptions`; durations as
    seconds or timedeltas.

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
        open_duration: How long the circuit stays open before it half-opens; 30 s.
        half_open_max_calls: Trial calls admitted at once when half-open, and
            successes needed to close; 3.
        record_exceptions: Exception types that count as failures.
        ignore_exceptions: Exception types that count as neither success nor
            failure, such as a caller's validation errors; they win over
            ``record_exceptions``.
        metric_meter: Where to export metrics; ``None`` uses the meter of
            Temporal's default runtime, looked up at first use so that a worker
            process that installs its runtime as the default before starting
            workers gets them on its /metrics.
        store: Shares open circuits with other processes (see
            :class:`RedisCircuitStore`); only async calls use it, ``call_sync``
            keeps to local state. ``None`` uses the process's default store, if
            any (:func:`set_default_circuit_store`; ``run_worker`` sets one when
            ``REDIS_URL`` is configured).
        sync_interval: The store is read at most once per this interval; 1 s.
        clock: Monotonic seconds; tests pass a fake one to drive time exactly.

    Raises:
        ValueError: An option is invalid; the message names it and its value.
        TypeError: An option is unknown.
    """

    window_size: int | None = None
    window_duration: timedelta | None = dataclasses.field(default=None, metadata=_DURATION)
    consecutive_failures: int | None = None
    failure_rate_threshold: float | None = None
    minimum_calls: int | None = None
    slow_call_duration: timedelta | None = dataclasses.field(default=None, metadata=_DURATION)
    slow_call_rate_threshold: float | None = None
    open_duration: timedelta = dataclasses.field(default=timedelta(seconds=30), metadata=_DURATION)
    half_open_max_calls: int = 3
    record_exceptions: tuple[type[Exception], ...] = (Exception,)
    ignore_exceptions: tuple[type[Exception], ...] = ()
    metric_meter: temporalio.common.MetricMeter | None = None
    store: CircuitStore | None = None
    sync_interval: timedelta = dataclasses.field(default=timedelta(seconds=1), metadata=_DURATION)
    clock: Callable[[], float] = time.monotonic

    def __init__(self, **options: Unpack[CircuitBreakerOptions]) -> None:
        given: Mapping[str, object] = options
        unknown = sorted(given.keys() - _DEFAULTS.keys())
        if unknown:
            raise TypeError(
                f"unknown circuit breaker option {unknown[0]!r}; "
                f"the options are {', '.join(_DEFAULTS)}"
            )
        values: dict[str, Any] = {
            name: given.get(name, default) for name, default in _DEFAULTS.items()
        }
        for name in _DURATIONS:
            values[name] = to_timedelta_or_none(values[name], name)
        _resolve(values)
        for name, value in values.items():
            object.__setattr__(self, name, value)


_DEFAULTS: dict[str, object] = {
    field.name: field.default for field in dataclasses.fields(CircuitBreakerConfig)
}
_DURATIONS = tuple(
    field.name
    for field in dataclasses.fields(CircuitBreakerConfig)
    if field.metadata.get("duration")
)


def _resolve(values: dict[str, Any]) -> None:
    """Check the options and fill in the defaults that depend on others, in place."""
    detectors = [
        name
        for name in ("window_size", "window_duration", "consecutive_failures")
        if values[name] is not None
    ]
    if len(detectors) > 1:
        raise ValueError(
            f"{' and '.join(detectors)}: give only one of window_size, window_duration "
            "and consecutive_failures"
        )
    if not detectors:
        values["window_size"] = _DEFAULT_WINDOW_SIZE
    if values["consecutive_failures"] is not None:
        _check_count("consecutive_failures", values["consecutive_failures"])
        for name in ("failure_rate_threshold", "minimum_calls", "slow_call_duration"):
            if values[name] is not None:
                raise ValueError(
                    f"{name} needs a sliding window (window_size or window_duration); "
                    "consecutive_failures counts failures in a row"
                )
    else:
        _resolve_window(values)
    _resolve_slow_calls(values)
    _check_positive("open_duration", values["open_duration"])
    _check_count("half_open_max_calls", values["half_open_max_calls"])
    for name in ("record_exceptions", "ignore_exceptions"):
        values[name] = _check_types(name, values[name])
    if not values["record_exceptions"]:
        raise ValueError("record_exceptions must name at least one exception type")
    _check_positive("sync_interval", values["sync_interval"])
    if not callable(values["clock"]):
        raise ValueError(f"clock must be a function returning seconds, got {values['clock']!r}")


def _resolve_slow_calls(values: dict[str, Any]) -> None:
    if values["slow_call_duration"] is None:
        if values["slow_call_rate_threshold"] is not None:
            raise ValueError("slow_call_rate_threshold needs slow_call_duration")
        return
    _check_positive("slow_call_duration", values["slow_call_duration"])
    if values["slow_call_rate_threshold"] is None:
        values["slow_call_rate_threshold"] = 1.0
    _check_rate("slow_call_rate_threshold", values["slow_call_rate_threshold"])


def _resolve_window(values: dict[str, Any]) -> None:
    window_size = values["window_size"]
    if window_size is not None:
        _check_count("window_size", window_size)
    window_duration = values["window_duration"]
    if window_duration is not None:
        _check_positive("window_duration", window_duration)
        seconds = window_duration.total_seconds()
        if seconds != int(seconds):
            raise ValueError(
                f"window_duration must be whole seconds (the window keeps one bucket "
                f"per second), got {seconds:g} s"
            )
    if values["failure_rate_threshold"] is None:
        values["failure_rate_threshold"] = _DEFAULT_FAILURE_RATE
    _check_rate("failure_rate_threshold", values["failure_rate_threshold"])
    if values["minimum_calls"] is None:
        default = _DEFAULT_MINIMUM_CALLS
        if window_size is not None:
            default = min(default, window_size)
        values["minimum_calls"] = default
    minimum_calls = _check_count("minimum_calls", values["minimum_calls"])
    if window_size is not None and minimum_calls > window_size:
        raise ValueError(
            f"minimum_calls ({minimum_calls}) must not exceed window_size "
            f"({window_size}): the window could never hold enough calls"
        )


def _check_positive(name: str, value: timedelta) -> None:
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
