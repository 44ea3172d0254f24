"""Open circuits shared between processes through Redis, on a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio
from helpers.resilience import Boom, calls, succeed

from shadow_sdk.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    RedisCircuitStore,
)
from shadow_sdk.testing import FakeClock, free_port

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


@pytest.fixture
def prefix() -> str:
    return f"test-circuit-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def stores(redis_url: str, prefix: str) -> AsyncIterator[list[RedisCircuitStore]]:
    """Two stores, each with a client of its own, as two worker processes would have."""
    async with (
        RedisCircuitStore(redis_url, prefix=prefix) as first,
        RedisCircuitStore(redis_url, prefix=prefix) as second,
    ):
        yield [first, second]


async def test_one_process_opening_the_circuit_protects_the_others(
    stores: list[RedisCircuitStore], raw_redis: redis.asyncio.Redis, name: str
) -> None:
    """B rejects within one sync interval of A opening, and reopens when A's trial fails."""
    clock_a, clock_b = FakeClock(), FakeClock()
    options: dict[str, Any] = {
        "consecutive_failures": 2,
        "open_duration": 30,
        "half_open_max_calls": 1,
    }
    a = CircuitBreaker(name, store=stores[0], clock=clock_a, **options)
    b = CircuitBreaker(name, store=stores[1], clock=clock_b, **options)
    await calls(b, "s")  # B read the store now, so it will not read it again for 1 s

    before = time.time()
    await calls(a, "ff")
    key = stores[0].key(name)
    until = float(await raw_redis.get(key) or 0)
    assert before + 30 <= until <= time.time() + 30
    assert 29_000 < await raw_redis.pttl(key) <= 30_000

    clock_b.advance(0.5)
    await calls(b, "s")  # within the sync interval: B still trusts its own state
    clock_b.advance(0.5)
    with pytest.raises(CircuitOpenError) as excinfo:
        await b.call(succeed)
    assert timedelta(seconds=29) < excinfo.value.retry_after <= timedelta(seconds=30)
    assert b.state is OPEN

    # Both half-open on their own clocks; A's trial fails, so A publishes a later time.
    clock_a.advance(30)
    clock_b.advance(30)
    assert b.state is HALF_OPEN
    await calls(a, "f")
    assert float(await raw_redis.get(key) or 0) > until
    clock_b.advance(1)
    with pytest.raises(CircuitOpenError):
        await b.call(succeed)
    assert b.state is OPEN

    # A closes through its own trial. The key is left to expire, and A's next look
    # at it, its own publication, reopens nothing.
    clock_a.advance(30)
    await calls(a, "s")
    assert a.state is CLOSED
    clock_a.advance(1)
    await calls(a, "s")
    assert a.state is CLOSED


async def test_the_store_is_read_at_most_once_per_sync_interval(
    redis_url: str, prefix: str, clock: FakeClock, name: str
) -> None:
    """Redis adds no round trip to the calls between two syncs."""

    class CountingStore(RedisCircuitStore):
        reads = 0

        async def open_until(self, name: str) -> float | None:
            self.reads += 1
            return await super().open_until(name)

    async with CountingStore(redis_url, prefix=prefix) as store:
        breaker = CircuitBreaker(name, store=store, sync_interval=timedelta(seconds=1), clock=clock)
        await asyncio.gather(*(breaker.call(succeed) for _ in range(100)))
        for _ in range(7):
            clock.advance(0.125)
            await breaker.call(succeed)
        assert store.reads == 1

        clock.advance(0.125)
        await breaker.call(succeed)
        assert store.reads == 2


async def test_calls_work_locally_when_redis_is_unreachable(
    clock: FakeClock, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Errors talking to Redis never fail a call; one warning per streak of them."""
    caplog.set_level(logging.WARNING, logger="shadow_sdk.resilience")
    async with RedisCircuitStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5) as store:
        breaker = CircuitBreaker(
            name, consecutive_failures=2, open_duration=30, store=store, clock=clock
        )
        for _ in range(3):
            await calls(breaker, "s")
            clock.advance(1)
        await calls(breaker, "ff")  # opening tries to publish, and fails too
        assert breaker.state is OPEN
        clock.advance(1)
        with pytest.raises(CircuitOpenError):
            await breaker.call(succeed)

    unavailable = [
        record for record in caplog.records if "shared state is unavailable" in record.getMessage()
    ]
    assert len(unavailable) == 1
    assert unavailable[0].levelname == "WARNING"
    assert name in unavailable[0].getMessage()


async def test_call_sync_keeps_to_local_state(
    stores: list[RedisCircuitStore], raw_redis: redis.asyncio.Redis, name: str, clock: FakeClock
) -> None:
    """A sync caller has no event loop to talk to Redis from: it neither publishes nor reads."""
    breaker = CircuitBreaker(name, consecutive_failures=1, store=stores[0], clock=clock)

    def fail_sync() -> None:
        raise Boom

    with pytest.raises(Boom):
        breaker.call_sync(fail_sync)

    assert breaker.state is OPEN
    assert await raw_redis.get(stores[0].key(name)) is None


def test_redis_store_names_the_extra_when_redis_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)

    with pytest.raises(ImportError, match=r"shadow-sdk\[redis\]"):
        RedisCircuitStore("redis://127.0.0.1:6379/0")


async def test_redis_store_leaves_a_given_client_open(
    raw_redis: redis.asyncio.Redis, prefix: str
) -> None:
    async with RedisCircuitStore(raw_redis, prefix=prefix) as store:
        await store.publish_open("dependency", time.time() + 5)

    assert await raw_redis.exists(f"{prefix}:dependency") == 1
