"""ResultCache: memory and Redis tiers, single flight, failures, metrics, and a real worker."""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import re
import sys
import time
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import prometheus_client
import pytest
import redis.asyncio
import temporalio.activity
from cache_activities import CALLS, Customer, LookupRepeatedlyWorkflow, lookup_customer
from network import free_port
from scrape import Scrape
from temporalio import activity
from temporalio.client import Client
from temporalio.common import MetricMeter

from shadow_sdk import ShadowPlugin, ShadowSettings, ShadowWorker
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.observability import TemporalMetricsCollector, create_runtime, registry_for
from shadow_sdk.resilience import ResultCache, cached
from shadow_sdk.testing import start_time_skipping

TTL = timedelta(minutes=5)
KEY = bytes(range(32))
LOGGER = "shadow_sdk.resilience"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Metrics:
    """A meter whose counters a test reads back as Prometheus would."""

    meter: MetricMeter
    registry: prometheus_client.CollectorRegistry

    def scrape(self) -> Scrape:
        return Scrape.parse(prometheus_client.generate_latest(self.registry).decode())

    def requests(self, cache: str, tier: str, outcome: str) -> float:
        return self.scrape().value(
            "shadow_cache_requests_total", cache=cache, tier=tier, outcome=outcome
        )

    def errors(self, cache: str, **labels: str) -> float:
        return self.scrape().value("shadow_cache_errors_total", cache=cache, **labels)


class Counted:
    """``function`` counts its calls and returns ``result(*args)``; ``gate`` holds it until set."""

    def __init__(self, result: Callable[..., object] = lambda *args: list(args)) -> None:
        self.calls = 0
        self.result = result
        self.gate = asyncio.Event()
        self.gate.set()

        async def function(*args: object) -> object:
            self.calls += 1
            await self.gate.wait()
            return self.result(*args)

        self.function = function


@pytest.fixture
def metrics() -> Metrics:
    runtime, buffer = create_runtime()
    return Metrics(runtime.metric_meter, registry_for(TemporalMetricsCollector(buffer)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def name() -> str:
    """A cache name of the test's own: Redis keys start with it, and the server is shared."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def default_cache() -> Iterator[None]:
    """Tests may install a default cache; the next test starts with a fresh one."""
    yield
    ResultCache.set_default(None)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.WARNING
    ]


async def keys_of(client: redis.asyncio.Redis, name: str) -> list[str]:
    return sorted([key.decode() async for key in client.scan_iter(f"shadow-cache:{name}:*")])


# The first tier.


async def test_a_repeated_call_is_served_from_memory(metrics: Metrics, name: str) -> None:
    cache = ResultCache(name, metric_meter=metrics.meter)
    calls = 0

    @cache.cached(ttl=TTL)
    async def double(number: int) -> int:
        nonlocal calls
        calls += 1
        return number * 2

    assert [await double(21) for _ in range(3)] == [42, 42, 42]
    assert calls == 1
    assert metrics.requests(name, "memory", "miss") == 1
    assert metrics.requests(name, "memory", "hit") == 2
    assert metrics.requests(name, "redis", "miss") == 0


async def test_an_entry_expires_after_its_ttl(clock: FakeClock) -> None:
    cache = ResultCache(clock=clock)
    calls = 0

    @cache.cached(ttl=timedelta(seconds=10))
    async def now() -> int:
        nonlocal calls
        calls += 1
        return calls

    first = await now()
    clock.advance(9.9)
    assert (first, await now()) == (1, 1)
    clock.advance(0.1)
    assert await now() == 2


async def test_the_least_recently_used_entry_is_evicted_beyond_max_entries() -> None:
    cache = ResultCache(max_entries=2)
    calls: list[str] = []

    @cache.cached(ttl=TTL)
    async def echo(word: str) -> str:
        calls.append(word)
        return word

    await echo("a")
    await echo("b")
    await echo("a")  # "a" is now the most recently used; "b" goes first.
    await echo("c")
    await echo("a")
    await echo("b")

    assert calls == ["a", "b", "c", "b"]


async def test_different_arguments_are_different_entries_however_they_are_passed() -> None:
    cache = ResultCache()
    calls: list[tuple[int, int, dict[str, int]]] = []

    @cache.cached(ttl=TTL)
    async def add(a: int, b: int = 1, extra: dict[str, int] | None = None) -> int:
        calls.append((a, b, extra or {}))
        return a + b + sum((extra or {}).values())

    assert await add(1) == 2
    assert await add(1, 1) == 2  # The default is part of the key: same entry.
    assert await add(a=1, b=1) == 2
    assert await add(2) == 3
    assert await add(1, 2) == 3
    assert await add(1, extra={"x": 1, "y": 2}) == 5
    assert await add(1, extra={"y": 2, "x": 1}) == 5  # JSON keys are sorted before hashing.

    assert calls == [(1, 1, {}), (2, 1, {}), (1, 2, {}), (1, 1, {"x": 1, "y": 2})]


async def test_models_come_back_as_their_type_and_are_never_shared() -> None:
    cache = ResultCache()

    @cache.cached(ttl=TTL)
    async def lookup(customer_id: str, at: datetime) -> Customer:
        return Customer(customer_id=customer_id, name="Ada", since=at, balance=Decimal("0.10"))

    at = datetime.fromisoformat("2025-01-02T03:04:05.678+01:00")
    fresh = await lookup("c-1", at)
    hit = await lookup("c-1", at)
    hit.name = "changed by one caller"

    assert type(fresh) is Customer
    assert type(hit) is Customer
    assert (await lookup("c-1", at)) == fresh
    assert fresh.since == at
    assert fresh.balance == Decimal("0.10")


async def test_exceptions_are_not_cached() -> None:
    cache = ResultCache()
    outcomes: Iterator[Exception | str] = iter([ValueError("flaky"), "ok"])

    @cache.cached(ttl=TTL)
    async def flaky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(ValueError, match="flaky"):
        await flaky()
    assert await flaky() == "ok"
    assert await flaky() == "ok"


async def test_arguments_that_cannot_be_serialized_are_a_type_error_naming_the_function() -> None:
    cache = ResultCache()

    @cache.cached(ttl=TTL)
    async def lookup(thing: object) -> str:
        return "never"

    with pytest.raises(TypeError, match=r"cannot cache .*lookup: its arguments cannot be serial"):
        await lookup(object())


def test_only_async_functions_with_a_return_annotation_can_be_cached() -> None:
    cache = ResultCache()

    def blocking() -> int:
        return 1

    async def unannotated():  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises(TypeError, match="only async functions can be cached"):
        cache.cached(ttl=TTL)(blocking)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="annotate its return type"):
        cache.cached(ttl=TTL)(unannotated)
    with pytest.raises(ValueError, match="ttl must be positive"):
        cache.cached(ttl=timedelta(0))


def test_the_activity_keeps_its_name_signature_and_type_hints() -> None:
    """temporalio reads these through functools.wraps; a worker test runs the activity."""
    definition = temporalio.activity._Definition.must_from_callable(lookup_customer)

    assert (definition.name, definition.arg_types, definition.ret_type) == (
        "lookup_customer",
        [str],
        Customer,
    )
    assert definition.is_async
    assert lookup_customer.__name__ == "lookup_customer"
    assert list(inspect.signature(lookup_customer).parameters) == ["customer_id"]
    assert typing.get_type_hints(lookup_customer) == {"customer_id": str, "return": Customer}
    assert inspect.iscoroutinefunction(lookup_customer)


async def test_methods_are_keyed_without_self() -> None:
    cache = ResultCache()
    calls = 0

    class Activities:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        @activity.defn
        @cache.cached(ttl=TTL)
        async def greet(self, who: str) -> str:
            nonlocal calls
            calls += 1
            return f"{self.greeting}, {who}"

    assert await Activities("Hello").greet("Ada") == "Hello, Ada"
    assert await Activities("Hi").greet("Ada") == "Hello, Ada"  # Instances share entries.
    assert calls == 1


async def test_invalidate_drops_one_entry(clock: FakeClock) -> None:
    cache = ResultCache(clock=clock)
    counted = Counted()
    echo = cache.cached(ttl=TTL)(counted.function)

    await echo(1)
    await echo(2)
    assert await cache.invalidate(echo, 1)
    await echo(1)
    await echo(2)

    assert counted.calls == 3
    with pytest.raises(ValueError, match="is not cached by"):
        await ResultCache().invalidate(echo, 1)


async def test_cached_without_a_cache_uses_the_default_at_each_call(
    metrics: Metrics, name: str, default_cache: None
) -> None:
    counted = Counted()
    echo = cached(ttl=TTL)(counted.function)
    await echo("x")
    ResultCache.set_default(ResultCache(name, metric_meter=metrics.meter))

    await echo("x")
    await echo("x")

    assert counted.calls == 2  # The new default started empty.
    assert metrics.requests(name, "memory", "hit") == 1


def test_options_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="max_entries must be 0 or more"):
        ResultCache(max_entries=-1)
    with pytest.raises(ValueError, match="redis_timeout must be positive"):
        ResultCache(redis_timeout=timedelta(0))
    with pytest.raises(ValueError, match="redis_cooldown must not be negative"):
        ResultCache(redis_cooldown=timedelta(seconds=-1))


async def test_max_entries_zero_keeps_nothing_in_memory() -> None:
    counted = Counted()
    echo = ResultCache(max_entries=0).cached(ttl=TTL)(counted.function)

    await echo(1)
    await echo(1)

    assert counted.calls == 2


# Single flight.


async def test_concurrent_identical_calls_run_the_function_once(
    metrics: Metrics, name: str
) -> None:
    cache = ResultCache(name, metric_meter=metrics.meter)
    calls = 0
    release = asyncio.Event()

    @cache.cached(ttl=TTL)
    async def lookup(customer_id: str) -> Customer:
        nonlocal calls
        calls += 1
        await release.wait()
        return Customer(customer_id=customer_id, name="Ada", since=datetime(2024, 1, 1), balance=1)

    tasks = [asyncio.create_task(lookup("c-1")) for _ in range(50)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*tasks)

    assert calls == 1
    assert all(type(result) is Customer and result == results[0] for result in results)
    assert len({id(result) for result in results}) == 50  # Each caller got its own copy.
    assert metrics.requests(name, "memory", "miss") == 1
    assert metrics.requests(name, "memory", "hit") == 49


async def test_a_failure_reaches_every_waiter_and_nothing_is_cached() -> None:
    cache = ResultCache()
    counted = Counted()
    counted.gate.clear()

    def fail(*args: object) -> object:
        raise RuntimeError("backend down")

    counted.result = fail
    echo = cache.cached(ttl=TTL)(counted.function)
    tasks = [asyncio.create_task(echo("c-1")) for _ in range(50)]
    await asyncio.sleep(0.05)
    counted.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert counted.calls == 1
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    counted.result = lambda *args: "recovered"
    assert await echo("c-1") == "recovered"
    assert counted.calls == 2


async def test_when_the_running_call_is_cancelled_a_waiter_runs_the_function() -> None:
    """Cancelling one activity must not cancel the others that waited on its call."""
    cache = ResultCache()
    counted = Counted()
    counted.gate.clear()
    echo = cache.cached(ttl=TTL)(counted.function)

    leader = asyncio.create_task(echo("c-1"))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(echo("c-1"))
    await asyncio.sleep(0.01)
    leader.cancel()
    await asyncio.sleep(0.01)
    counted.gate.set()

    assert await waiter == ["c-1"]
    assert leader.cancelled()
    assert counted.calls == 2


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
        f"shadow-cache:{name}:7:test_result_cache."
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


# On a real Temporal server.


async def test_a_workflow_calling_the_activity_repeatedly_runs_it_once(
    temporal_client: Client,
    task_queue: str,
    redis_url: str,
    raw_redis: redis.asyncio.Redis,
    name: str,
    default_cache: None,
) -> None:
    customer_id = f"c-{uuid.uuid4()}"
    async with ResultCache(name, redis=redis_url) as cache:
        ResultCache.set_default(cache)
        async with ShadowWorker(
            temporal_client,
            ShadowSettings(temporal_task_queue=task_queue),
            workflows=[LookupRepeatedlyWorkflow],
            activities=[lookup_customer],
        ):
            results = await temporal_client.execute_workflow(
                LookupRepeatedlyWorkflow.run,
                args=[customer_id, 3],
                id=f"lookup-{uuid.uuid4()}",
                task_queue=task_queue,
            )

    assert CALLS[customer_id] == 1
    [key] = await keys_of(raw_redis, name)
    assert key.startswith(f"shadow-cache:{name}:1:lookup_customer:")  # The activity type.
    assert len(results) == 3
    assert all(type(result) is Customer and result == results[0] for result in results)
    assert results[0].balance == Decimal("1234.50")


async def test_inside_an_activity_requests_are_counted_on_the_workers_meter(
    task_queue: str, name: str, default_cache: None
) -> None:
    """Without a metric_meter, the activity's meter adds the activity type and task queue."""
    runtime, buffer = create_runtime()
    registry = registry_for(TemporalMetricsCollector(buffer))
    customer_id = f"c-{uuid.uuid4()}"
    ResultCache.set_default(ResultCache(name))
    async with (
        await start_time_skipping(plugin=ShadowPlugin(), runtime=runtime) as env,
        ShadowWorker(
            env.client,
            ShadowSettings(temporal_task_queue=task_queue),
            workflows=[LookupRepeatedlyWorkflow],
            activities=[lookup_customer],
        ),
    ):
        await env.client.execute_workflow(
            LookupRepeatedlyWorkflow.run,
            args=[customer_id, 4],
            id=f"lookup-{uuid.uuid4()}",
            task_queue=task_queue,
        )

    scraped = Scrape.parse(prometheus_client.generate_latest(registry).decode())
    labels = {"cache": name, "activity_type": "lookup_customer", "task_queue": task_queue}
    assert (
        scraped.value("shadow_cache_requests_total", tier="memory", outcome="miss", **labels) == 1
    )
    assert scraped.value("shadow_cache_requests_total", tier="memory", outcome="hit", **labels) == 3
    label_names = {
        key for labels in scraped.label_sets("shadow_cache_requests_total") for key in labels
    }
    assert label_names <= {"cache", "tier", "outcome", "namespace", "task_queue", "activity_type"}
