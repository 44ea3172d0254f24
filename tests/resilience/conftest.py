"""Fixtures of the resilience tests: names of their own, a fake clock, metrics, Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio
from helpers.resilience import Metrics

from shadow_sdk.resilience import ResultCache
from shadow_sdk.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def name() -> str:
    """A name no other test uses: breakers, caches, Redis keys are process- and session-wide."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client of the session's redis-server, to look at what the helpers stored."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def default_cache() -> Iterator[None]:
    """Tests may install a default cache; the next test starts with a fresh one."""
    yield
    ResultCache.set_default(None)
