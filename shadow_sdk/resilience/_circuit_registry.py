"""One circuit breaker per dependency and process, shared by every activity that calls it."""

from __future__ import annotations

import dataclasses
import threading
from typing import Unpack

from shadow_sdk.resilience._circuit_breaker import CircuitBreaker
from shadow_sdk.resilience._circuit_config import CircuitBreakerConfig, CircuitBreakerOptions

_REGISTRY: dict[str, CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def circuit_breaker(name: str, **options: Unpack[CircuitBreakerOptions]) -> CircuitBreaker:
    """The process's circuit breaker called ``name``, made with ``options`` on first use.

    Activities that call the same dependency should share one breaker, so that
    what one discovers protects the others: call this at import time or in each
    activity with the same options. Asking again with other options is a
    mistake that would silently keep the first ones, so it raises.

    Args:
        name: The breaker's name.
        **options: See :class:`CircuitBreakerConfig`.

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
        f"{field.name} {mine!r} (asked for {theirs!r})"
        for field in dataclasses.fields(CircuitBreakerConfig)
        if (mine := getattr(existing.config, field.name))
        != (theirs := getattr(wanted.config, field.name))
    ]
    if differences:
        raise ValueError(
            f"circuit breaker {name!r} already exists with other options: "
            f"{', '.join(differences)}; ask for it with the same options everywhere, "
            "or give this dependency another name"
        )
    return existing
