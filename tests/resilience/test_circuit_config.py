"""The circuit breaker's options: one definition, validated, with defaults; the registry."""

from __future__ import annotations

import asyncio
import dataclasses
import typing
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shadow_sdk import Duration
from shadow_sdk.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOptions,
    circuit_breaker,
)
from shadow_sdk.testing import FakeClock

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


# One definition.


def test_the_keyword_arguments_are_the_fields_of_the_config() -> None:
    """CircuitBreakerOptions lists the config's fields, typed alike but for durations.

    Every entry point (CircuitBreaker, circuit_breaker, CircuitBreakerConfig) takes
    ``**options: Unpack[CircuitBreakerOptions]``, so this is what keeps them in step.
    """
    fields = typing.get_type_hints(CircuitBreakerConfig)
    options = typing.get_type_hints(CircuitBreakerOptions)
    durations = {
        field.name
        for field in dataclasses.fields(CircuitBreakerConfig)
        if field.metadata.get("duration")
    }

    assert list(options) == [field.name for field in dataclasses.fields(CircuitBreakerConfig)]
    assert list(fields) == list(options)
    for name, kind in fields.items():
        if name in durations:
            # Given as seconds or a timedelta; kept as a timedelta.
            assert options[name] == kind | Duration, name
            assert timedelta in typing.get_args(kind) or kind is timedelta, name
        else:
            assert options[name] == kind, name
    assert durations == {"window_duration", "slow_call_duration", "open_duration", "sync_interval"}


@pytest.mark.parametrize(
    "make",
    [
        lambda **options: CircuitBreaker("dependency", **options).config,
        lambda **options: circuit_breaker(f"registry-{uuid.uuid4()}", **options).config,
        CircuitBreakerConfig,
    ],
    ids=["CircuitBreaker", "circuit_breaker", "CircuitBreakerConfig"],
)
def test_every_entry_point_takes_the_options_alike(make: Any) -> None:
    """Seconds or timedeltas, the same config; an unknown option is a TypeError naming it."""
    in_seconds = make(window_duration=60, open_duration=2.5, slow_call_duration=1)
    as_timedeltas = make(
        window_duration=timedelta(minutes=1),
        open_duration=timedelta(seconds=2.5),
        slow_call_duration=timedelta(seconds=1),
    )

    assert in_seconds == as_timedeltas
    assert in_seconds.open_duration == timedelta(seconds=2.5)
    with pytest.raises(TypeError, match="unknown circuit breaker option 'open_for'"):
        make(open_for=30)
