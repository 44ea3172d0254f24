"""REDIS_URL shares open circuits and cached results between a service's workers."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import redis.asyncio
from helpers.resilience import keys_of

from shadow_sdk import ShadowSettings
from shadow_sdk.resilience import CircuitBreaker, CircuitOpenError, cached, shared_state

KEY = bytes(range(32))


@cached(ttl=timedelta(minutes=1))
async def secret_lookup(customer: str) -> dict[str, str]:
    return {"customer": customer, "card": "4111-1111-1111-1111"}


async def fail() -> None:
    raise ConnectionError("dependency down")


async def test_with_redis_url_breakers_and_cached_functions_share_through_redis(
    redis_url: str, raw_redis: redis.asyncio.Redis, name: str
) -> None:
    settings = ShadowSettings(
        redis_url=redis_url, codec_keys=json.dumps({"k": base64.b64encode(KEY).decode()})
    )
    # Created before the shared state exists, as modules create them at import.
    breaker = CircuitBreaker(name, consecutive_failures=1, open_duration=60)
    async with shared_state(settings, name=name):
        assert await secret_lookup("ada") == {"customer": "ada", "card": "4111-1111-1111-1111"}
        with pytest.raises(ConnectionError):
            await breaker.call(fail)
        with pytest.raises(CircuitOpenError):
            await breaker.call(fail)

    cached_keys = await keys_of(raw_redis, name)
    circuit = await raw_redis.get(f"shadow:circuit:{name}")
    stored = await raw_redis.get(cached_keys[0])
    # Outside the block the cache is in memory only again: nothing new reaches Redis.
    await secret_lookup("grace")
    after = await keys_of(raw_redis, name)

    assert len(cached_keys) == 1
    assert b"4111" not in stored
    assert circuit is not None
    assert after == cached_keys


async def test_without_redis_url_everything_stays_in_the_process() -> None:
    async with shared_state(ShadowSettings(), name="local"):
        assert await secret_lookup("ada") == {"customer": "ada", "card": "4111-1111-1111-1111"}
