"""ResultCache's second tier on a real redis-server: sharing, expiry, encryption, failures."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timedelta

import pytest
import redis.asyncio
from cache_activities import Customer
from helpers.resilience import LOGGER, Counted, Metrics, keys_of, warnings_of
from temporalio import activity

from shadow_sdk import ShadowSettings
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.resilience import ResultCache
from shadow_sdk.testing import FakeClock, free_port

TTL = timedelta(minutes=5)
KEY = bytes(range(32))


# The second tier, on a real redis-server.


async def test_another_worker_process_gets_a_redis_hit(
    redis_url: str, metrics: Metrics, name: str
) -> None:
    counted = Counted()
    async with (
        ResultCache(name, redis=redis_url, metric_meter=metrics.meter) as first,
        ResultCache(name, redis=redis_url, metric_meter=metrics.meter) as second,
    ):
        assert await first.cached(ttl=TTL)(counted.function)("c-1") == ["c-1"]
        from_second = second.cached(ttl=TTL)(counted.function)

        assert await from_second("c-1") == ["c-1"]
        assert await from_second("c-1") == ["c-1"]

    assert counted.calls == 1
    assert metrics.requests(name, "redis", "miss") == 1
    assert metrics.requests(name, "redis", "hit") == 1
    assert metrics.requests(name, "memory", "hit") == 1


async def test_the_redis_key_names_the_activity_and_expires_with_the_ttl(
    redis_url: str, raw_redis: redis.asyncio.Redis, name: str
) -> None:
    async with ResultCache(name, redis=redis_url, version="7") as cache:

        @activity.defn(name="customers.lookup")
        @cache.cached(ttl=timedelta(seconds=90))
        async def lookup(customer_id: str) -> str:
            return customer_id

        @cache.cached(ttl=timedelta(seconds=30))
        async def helper(customer_id: str) -> str:
            return customer_id

        await lookup("c-1")
        await helper("c-1")

    [activity_key, helper_key] = await keys_of(raw_redis, name)
    assert re.fullmatch(rf"shadow-cache:{name}:7:customers\.lookup:[0-9a-f]{{64}}", activity_key)
    assert helper_key.startswith(
        f"shadow-cache:{name}:7:test_cache_redis."
        "test_the_redis_key_names_the_activity_and_expires_with_the_ttl.<locals>.helper:"
    )
    assert 89_000 < await raw_redis.pttl(activity_key) <= 90_000
    assert 29_000 < await raw_redis.pttl(helper_key) <= 30_000


async def test_memory_filled_from_redis_expires_with_the_redis_key(
    redis_url: str, raw_redis: redis.asyncio.Redis, name: str, clock: FakeClock, metrics: Metrics
) -> None:
    """A Redis hit is kept in memory for the key's remaining time, not a whole TTL."""
    counted = Counted()
    async with (
        ResultCache(name, redis=redis_url) as first,
        ResultCache(name, redis=redis_url, clock=clock, metric_meter=metrics.meter) as second,
    ):
        await first.cached(ttl=TTL)(counted.function)("c-1")
        [key] = await keys_of(raw_redis, name)
        await raw_redis.pexpire(key, 500)
        from_second = second.cached(ttl=TTL)(counted.function)
        await from_second("c-1")
        clock.advance(1)
        await asyncio.sleep(0.6)  # The Redis key expires too.
        await from_second("c-1")

    assert metrics.requests(name, "redis", "hit") == 1
    assert metrics.requests(name, "memory", "miss") == 2  # Not kept for the whole TTL.
    assert counted.calls == 2


async def test_values_in_redis_are_encrypted_with_the_codec(
    redis_url: str, raw_redis: redis.asyncio.Redis, name: str, metrics: Metrics
) -> None:
    secret_name = f"Ada Lovelace {uuid.uuid4()}"
    codec = EncryptionCodec(KeyRing({"k1": KEY}))

    async def lookup(customer_id: str) -> Customer:
        return Customer(
            customer_id=customer_id, name=secret_name, since=datetime(2024, 1, 1), balance=1
        )

    async with (
        ResultCache(name, redis=redis_url, codec=codec) as writer,
        ResultCache(name, redis=redis_url, codec=codec, metric_meter=metrics.meter) as reader,
        ResultCache(name, redis=redis_url, metric_meter=metrics.meter) as keyless,
    ):
        fresh = await writer.cached(ttl=TTL)(lookup)("c-1")
        [key] = await keys_of(raw_redis, name)
        stored = await raw_redis.get(key)
        from_reader = await reader.cached(ttl=TTL)(lookup)("c-1")
        from_keyless = await keyless.cached(ttl=TTL)(lookup)("c-1")

    assert stored is not None
    assert secret_name.encode() not in stored
    assert b"binary/encrypted" in stored
    assert from_reader == fresh
    assert metrics.requests(name, "redis", "hit") == 1
    # Without the key the value is unusable: counted, and the function is called.
    assert from_keyless == fresh
    assert metrics.errors(name) == 1


async def test_an_unencrypted_value_is_refused_when_the_cache_encrypts(
    redis_url: str, name: str, metrics: Metrics
) -> None:
    """Whoever can write to Redis but has no key cannot plant results."""
    planted = Counted(lambda *args: "planted")
    genuine = Counted(lambda *args: "genuine")
    codec = EncryptionCodec(KeyRing({"k1": KEY}))
    async with (
        ResultCache(name, redis=redis_url) as plaintext,
        ResultCache(name, redis=redis_url, codec=codec, metric_meter=metrics.meter) as encrypted,
    ):
        await plaintext.cached(ttl=TTL, name="f")(planted.function)("c-1")
        result = await encrypted.cached(ttl=TTL, name="f")(genuine.function)("c-1")

    assert result == "genuine"
    assert metrics.errors(name, error="UnencryptedValueError") == 1


async def test_a_given_client_is_used_and_left_open_and_invalidate_reaches_redis(
    raw_redis: redis.asyncio.Redis, name: str
) -> None:
    counted = Counted()
    async with (
        ResultCache(name, redis=raw_redis) as first,
        ResultCache(name, redis=raw_redis) as second,
    ):
        from_first = first.cached(ttl=TTL, name="f")(counted.function)
        from_second = second.cached(ttl=TTL, name="f")(counted.function)
        await from_first("c-1")
        assert await first.invalidate(from_first, "c-1")
        await from_second("c-1")

    assert counted.calls == 2  # The entry was gone from Redis too.
    assert await raw_redis.ping()


async def test_version_and_name_isolate_entries(redis_url: str, name: str) -> None:
    counted = Counted()
    other_name = f"{name}-other"
    async with (
        ResultCache(name, redis=redis_url, version="1") as v1,
        ResultCache(name, redis=redis_url, version="2") as v2,
        ResultCache(other_name, redis=redis_url, version="1") as other,
        ResultCache(name, redis=redis_url, version="1") as v1_again,
    ):
        for cache in (v1, v2, other, v1_again):
            await cache.cached(ttl=TTL, name="f")(counted.function)("c-1")

    assert counted.calls == 3  # Only the last one found its entry.


async def test_an_unreachable_redis_is_counted_logged_once_and_bypassed(
    metrics: Metrics, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    down = f"redis://127.0.0.1:{free_port()}/0"
    counted = Counted()
    async with ResultCache(
        name, redis=down, redis_cooldown=timedelta(0), metric_meter=metrics.meter
    ) as cache:
        echo = cache.cached(ttl=TTL)(counted.function)
        results = [await echo(number) for number in range(3)]

    assert results == [[0], [1], [2]]
    assert counted.calls == 3
    # A lookup and a write per call.
    assert metrics.errors(name, error="ConnectionError") == 6
    [warning] = warnings_of(caplog)
    assert f"result cache {name!r}: Redis failed (ConnectionError:" in warning


async def test_after_a_redis_error_the_redis_tier_rests_for_the_cooldown(
    metrics: Metrics, name: str, clock: FakeClock
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    counted = Counted()
    async with ResultCache(
        name,
        redis=down,
        redis_cooldown=timedelta(seconds=5),
        metric_meter=metrics.meter,
        clock=clock,
    ) as cache:
        echo = cache.cached(ttl=timedelta(seconds=1))(counted.function)
        await echo(1)
        clock.advance(2)
        await echo(1)  # Expired from memory; Redis is not asked yet.
        errors_while_resting = metrics.errors(name)
        clock.advance(3)
        await echo(1)

    assert counted.calls == 3
    assert errors_while_resting == 1
    assert metrics.errors(name) == 2


async def test_a_slow_redis_is_cut_off_by_the_timeout(metrics: Metrics, name: str) -> None:
    """A server that accepts connections and never answers, as a hung Redis does."""
    connections: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    counted = Counted()
    try:
        async with ResultCache(
            name,
            redis=f"redis://127.0.0.1:{port}/0",
            redis_timeout=timedelta(milliseconds=200),
            metric_meter=metrics.meter,
        ) as cache:
            started = time.monotonic()
            result = await cache.cached(ttl=TTL)(counted.function)("c-1")
            elapsed = time.monotonic() - started
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()

    assert result == ["c-1"]
    assert connections  # Redis was asked, and did not answer.
    assert elapsed < 1.0  # One timeout: after it the tier rests, and the write is skipped.
    assert metrics.errors(name, error="TimeoutError") == 1


async def test_a_garbage_value_is_counted_logged_once_and_overwritten(
    redis_url: str,
    raw_redis: redis.asyncio.Redis,
    name: str,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted = Counted()
    async with ResultCache(name, redis=redis_url) as writer:
        await writer.cached(ttl=TTL)(counted.function)("c-1")
        await writer.cached(ttl=TTL)(counted.function)("c-2")
    keys = await keys_of(raw_redis, name)
    for key in keys:
        await raw_redis.set(key, b"\xff\xfe not a payload", px=60_000)

    async with (
        ResultCache(name, redis=redis_url, metric_meter=metrics.meter) as reader,
        ResultCache(name, redis=redis_url, metric_meter=metrics.meter) as later,
    ):
        results = [await reader.cached(ttl=TTL)(counted.function)(arg) for arg in ("c-1", "c-2")]
        again = await later.cached(ttl=TTL)(counted.function)("c-1")

    assert results == [["c-1"], ["c-2"]]
    assert counted.calls == 4
    assert metrics.errors(name, error="DecodeError") == 2
    assert len([w for w in warnings_of(caplog) if "is unusable (DecodeError" in w]) == 1
    # The fresh result replaced the garbage.
    assert again == ["c-1"]
    assert metrics.requests(name, "redis", "hit") == 1


async def test_a_value_of_another_type_is_refused_without_logging_its_content(
    redis_url: str, name: str, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    """A result type changed without a version bump: the old values do not validate."""
    secret = f"secret-{uuid.uuid4()}"

    async def old(customer_id: str) -> dict[str, str]:
        return {"name": secret}

    async def new(customer_id: str) -> Customer:
        return Customer(customer_id=customer_id, name="Ada", since=datetime(2024, 1, 1), balance=1)

    async with (
        ResultCache(name, redis=redis_url) as before,
        ResultCache(name, redis=redis_url, metric_meter=metrics.meter) as after,
    ):
        await before.cached(ttl=TTL, name="lookup")(old)("c-1")
        result = await after.cached(ttl=TTL, name="lookup")(new)("c-1")

    assert type(result) is Customer
    assert metrics.errors(name, error="ValidationError") == 1
    [warning] = warnings_of(caplog)
    assert "customer_id: Field required" in warning
    assert secret not in caplog.text


async def test_from_settings_encrypts_with_the_settings_keys(
    redis_url: str, raw_redis: redis.asyncio.Redis, name: str
) -> None:
    settings = ShadowSettings(
        redis_url=redis_url, codec_keys={"2026-11": base64.b64encode(KEY).decode()}
    )
    counted = Counted(lambda *args: "card 4111-1111")
    async with ResultCache.from_settings(settings, name=name) as cache:
        assert await cache.cached(ttl=TTL)(counted.function)("c-1") == "card 4111-1111"
    [key] = await keys_of(raw_redis, name)
    stored = await raw_redis.get(key)

    assert stored is not None
    assert b"4111" not in stored
    assert b"2026-11" in stored  # The key id, in the encrypted payload's metadata.


async def test_from_settings_never_logs_the_redis_password(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    password = f"pw-{uuid.uuid4().hex}"
    settings = ShadowSettings(redis_url=f"redis://:{password}@127.0.0.1:{free_port()}/0")
    async with ResultCache.from_settings(settings, name=name) as cache:
        assert await cache.cached(ttl=TTL)(Counted().function)("c-1") == ["c-1"]

    assert warnings_of(caplog)
    assert password not in caplog.text
    assert password not in repr(cache)


def test_a_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)

    with pytest.raises(ImportError, match=r"install shadow-sdk\[redis\]"):
        ResultCache(redis="redis://127.0.0.1:6379/0")
    assert ResultCache().name == "default"  # Memory only needs nothing.
