"""Shared state settings: ``REDIS_URL``, where the resilience helpers keep what workers share."""

from __future__ import annotations

import importlib.util
import urllib.parse

from pydantic import SecretStr, field_validator

from shadow_sdk._settings._types import SettingsPart

_REDIS_SCHEMES = ("redis", "rediss", "unix")


class SharedStateSettings(SettingsPart):
    """Where circuit breakers and the result cache share their state across workers."""

    redis_url: SecretStr | None = None
    """Redis for circuit breaker state and cached activity results shared by all workers,
    ``redis://host:6379/0`` (``rediss://`` for TLS); unset: per process only."""

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None:
            return None
        expected = "expected redis://host:6379/0, rediss://host:6380/0 or unix:///path/redis.sock"
        try:
            parts = urllib.parse.urlsplit(url.get_secret_value())
            port = parts.port  # Raises ValueError when it is not a number.
        except ValueError:
            raise ValueError(expected) from None
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError(expected)
        if parts.scheme == "unix" and not parts.path:
            raise ValueError(f"{expected}: a unix URL needs the socket's path")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"{expected}: no host")
        if port == 0:
            raise ValueError(f"{expected}: port 0")
        if importlib.util.find_spec("redis") is None:
            raise ValueError("needs the redis package: install shadow-sdk[redis]")
        return url
