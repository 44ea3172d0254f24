"""Durations in the public API: seconds or a timedelta, accepted alike everywhere."""

from __future__ import annotations

import importlib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from test_api import PUBLIC_MODULES

from shadow_sdk import Duration, Seconds, ShadowSettings
from shadow_sdk._duration import to_timedelta
from shadow_sdk.auth import TokenIssuer, TokenVerifier
from shadow_sdk.codec import KeyRing
from shadow_sdk.resilience import CircuitBreaker, RedisCircuitStore, ResultCache

DURATION_NAME = re.compile(
    r"(^|_)(timeout|ttl|interval|duration|leeway|cooldown|delay)$", re.IGNORECASE
)
"""What a duration parameter is called; the audit below finds them by these names."""
ACCEPTED = (Duration, Duration | None, Seconds, Seconds | None)
"""Duration for parameters; Seconds for settings, which also parse text from the environment."""

SECRET = "s" * 32


def public_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public function, class, and public method of a public class."""
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                yield f"{module_name}.{name}", obj
                for attribute, member in vars(obj).items():
                    if not attribute.startswith("_") and isinstance(
                        member, classmethod | staticmethod | types.FunctionType
                    ):
                        yield f"{module_name}.{name}.{attribute}", getattr(obj, attribute)
            elif inspect.isroutine(obj):
                yield f"{module_name}.{name}", obj


def evaluate(annotation: object, namespace: dict[str, Any]) -> Any:
    """An annotation, evaluated in its module if it is text (``from __future__ import annotations``)."""
    if isinstance(annotation, str):
        return eval(annotation, namespace)  # noqa: S307  The SDK's own annotations.
    return annotation


def duration_parameters() -> dict[str, Any]:
    """Each public parameter named like a duration, with its evaluated annotation.

    ``**options: Unpack[SomeTypedDict]`` counts as the TypedDict's keys.
    """
    found: dict[str, Any] = {}
    for label, function in public_callables():
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # A builtin without a signature: nothing of ours.
            continue
        target = inspect.unwrap(function.__init__ if inspect.isclass(function) else function)
        namespace: dict[str, Any] = getattr(target, "__globals__", {})
        for parameter in signature.parameters.values():
            if parameter.kind is parameter.VAR_KEYWORD:
                hint = evaluate(parameter.annotation, namespace)
                if typing.get_origin(hint) is typing.Unpack:
                    [options] = typing.get_args(hint)
                    for key, value in typing.get_type_hints(options).items():
                        if DURATION_NAME.search(key):
                            found[f"{label}(**{parameter.name}).{key}"] = value
            elif DURATION_NAME.search(parameter.name):
                found[f"{label}({parameter.name})"] = evaluate(parameter.annotation, namespace)
    return found


def test_every_public_duration_parameter_takes_seconds_or_a_timedelta() -> None:
    """The audit: no public parameter named like a duration is typed otherwise than Duration.

    Settings (``ShadowSettings``' duration fields, named after their variables) are
    ``Seconds``, which takes seconds or a timedelta the same way and parses text too.

    Parameters forwarded to temporalio (``**options`` of ``ShadowWorker``, ``connect``,
    ``start_dev_server``...) keep temporalio's own types and are not ours to change.
    """
    found = duration_parameters()

    assert {
        "shadow_sdk.auth.TokenIssuer.issue(ttl)",
        "shadow_sdk.auth.TokenVerifier(leeway)",
        "shadow_sdk.codec.KeyRing(reload_interval)",
        "shadow_sdk.codec.KeyRing.from_directory(reload_interval)",
        "shadow_sdk.resilience.CircuitBreaker(**options).open_duration",
        "shadow_sdk.resilience.circuit_breaker(**options).sync_interval",
        "shadow_sdk.resilience.CircuitBreakerConfig(**options).window_duration",
        "shadow_sdk.resilience.RedisCircuitStore(timeout)",
        "shadow_sdk.resilience.ResultCache(redis_timeout)",
        "shadow_sdk.resilience.ResultCache.from_settings(redis_cooldown)",
        "shadow_sdk.resilience.ResultCache.cached(ttl)",
        "shadow_sdk.resilience.cached(ttl)",
        "shadow_sdk.ShadowSettings(AUTH_LEEWAY)",
    } <= found.keys()
    assert {label: hint for label, hint in found.items() if hint not in ACCEPTED} == {}


async def echo(value: int) -> int:
    return value


def ttl_of_cached(ttl: Any) -> object:
    cached_function = ResultCache().cached(ttl=ttl)(echo).__shadow_result_cache__
    return cached_function.ttl


def seconds_of_issued_token(ttl: Any) -> timedelta:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = TokenIssuer(hs256_secret=SECRET).issue("ada", ["viewer"], ttl=ttl, now=now)
    claims = jwt.decode(token, options={"verify_signature": False})
    return timedelta(seconds=claims["exp"] - claims["iat"])


PARAMETERS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "open_duration": ("open_duration", lambda v: CircuitBreaker("d", open_duration=v).config.open_duration),
    "sync_interval": ("sync_interval", lambda v: CircuitBreaker("d", sync_interval=v).config.sync_interval),
    "store timeout": ("timeout", lambda v: RedisCircuitStore("redis://127.0.0.1:1/0", timeout=v).timeout),
    "redis_timeout": ("redis_timeout", lambda v: ResultCache(redis_timeout=v).redis_timeout),
    "redis_cooldown": ("redis_cooldown", lambda v: ResultCache(redis_cooldown=v).redis_cooldown),
    "from_settings": (
        "redis_timeout",
        lambda v: ResultCache.from_settings(ShadowSettings(), name="d", redis_timeout=v).redis_timeout,
    ),
    "cached ttl": ("ttl", ttl_of_cached),
    "leeway": ("leeway", lambda v: TokenVerifier(hs256_secret=SECRET, leeway=v).leeway),
    "token ttl": ("ttl", seconds_of_issued_token),
    "reload_interval": (
        "reload_interval",
        lambda v: KeyRing({"k": bytes(32)}, reload_interval=v)._reload_interval,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PARAMETERS))
def test_seconds_and_timedeltas_mean_the_same_and_anything_else_is_named(case: str) -> None:
    name, make = PARAMETERS[case]

    assert make(90) == make(90.0) == make(timedelta(seconds=90))
    assert make(2.5) == make(timedelta(seconds=2.5))
    with pytest.raises(ValueError, match=rf"{name} must be seconds or a timedelta, got '90s'"):
        make("90s")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, r"d must be seconds or a timedelta, got True"),
        (None, r"d must be seconds or a timedelta, got None"),
        (math.nan, r"d must be a finite number of seconds, got nan"),
        (math.inf, r"d must be a finite number of seconds, got inf"),
        (1e30, r"d is too long: 1e\+30 s"),
    ],
)
def test_what_is_not_a_duration_is_refused_naming_the_parameter(
    value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        to_timedelta(value, "d")


def test_ranges_are_checked_alike() -> None:
    assert to_timedelta(0, "d", non_negative=True) == timedelta(0)
    with pytest.raises(ValueError, match=r"d must be positive, got 0 s"):
        to_timedelta(0, "d", positive=True)
    with pytest.raises(ValueError, match=r"d must not be negative, got -1.5 s"):
        to_timedelta(timedelta(seconds=-1.5), "d", non_negative=True)
