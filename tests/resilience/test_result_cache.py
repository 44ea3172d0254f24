"""ResultCache: the memory tier, keys, single flight, metrics, and a real worker."""

from __future__ import annotations

import asyncio
import inspect
import typing
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import prometheus_client
import pytest
import redis.asyncio
import temporalio.activity
from cache_activities import CALLS, Customer, LookupRepeatedlyWorkflow, lookup_customer
from helpers.resilience import Counted, Metrics, Workflows, keys_of
from temporalio import activity
from temporalio.client import Client

from shadow_sdk import ShadowPlugin
from shadow_sdk.observability import TemporalMetricsCollector, create_runtime, registry_for
from shadow_sdk.resilience import ResultCache, cached
from shadow_sdk.testing import FakeClock, Scrape, start_time_skipping

TTL = timedelta(minutes=5)


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


async def test_equal_arguments_of_other_types_are_other_entries() -> None:
    """1, True, 1.0 and "1" are equal or alike to Python, and serialize differently."""
    cache = ResultCache()
    calls: list[object] = []

    @cache.cached(ttl=TTL)
    async def describe(value: bool | int | float | str | None) -> str:
        calls.append(value)
        return repr(value)

    arguments: list[bool | int | float | str | None] = [1, True, 1.0, "1", None, 0, False, -0.0]
    first = [await describe(value) for value in arguments]
    again = [await describe(value) for value in arguments]

    assert first == again == [repr(value) for value in arguments]
    assert calls == arguments


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


# On a real Temporal server.


def lookups(client: Client, task_queue: str) -> Workflows:
    return Workflows(
        client, task_queue, workflows=[LookupRepeatedlyWorkflow], activities=[lookup_customer]
    )


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
        results = await lookups(temporal_client, task_queue).execute(
            LookupRepeatedlyWorkflow.run, customer_id, 3
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
    async with await start_time_skipping(plugin=ShadowPlugin(), runtime=runtime) as env:
        await lookups(env.client, task_queue).execute(LookupRepeatedlyWorkflow.run, customer_id, 4)

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
