"""Per-call overhead of a circuit breaker and of a result cache hit, next to a bare call.

Run with ``nox -s bench``. Each contender is timed for short rounds, alternating
with the others round by round so that all see the same machine; the figures
are medians. The guarded function does almost nothing, so the table shows what
the helpers themselves cost per call: the ratios are what to read, and against
an activity that does real I/O (milliseconds) these microseconds vanish.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio.runtime import Runtime, TelemetryConfig

from shadow_sdk.resilience import CircuitBreaker, ResultCache

ROUNDS = 7
ROUND_SECONDS = 0.2


async def per_second(operation: Callable[[], Awaitable[object]]) -> float:
    """Awaited calls per second, for about ROUND_SECONDS, in the running event loop."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < ROUND_SECONDS:
        for _ in range(100):
            await operation()
        count += 100
    return count / elapsed


async def compare(contenders: dict[str, Callable[[], Awaitable[object]]]) -> dict[str, float]:
    """Median calls per second of each contender, measured in alternation."""
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, operation in contenders.items():
            rounds[name].append(await per_second(operation))
    return {name: statistics.median(values) for name, values in rounds.items()}


async def lookup(customer_id: int) -> dict[str, int]:
    """The guarded call: as cheap as an async function gets."""
    return {"customer_id": customer_id, "tier": 2}


async def measure() -> dict[str, float]:
    """Calls per second of a bare call and of each helper around it."""
    # Metrics go to a runtime of the benchmark's own, as they would in a worker.
    meter = Runtime(telemetry=TelemetryConfig()).metric_meter
    breaker = CircuitBreaker("bench", failure_rate_threshold=0.5, metric_meter=meter)
    consecutive = CircuitBreaker("bench-consecutive", consecutive_failures=5, metric_meter=meter)
    cache = ResultCache("bench", metric_meter=meter)
    cached_lookup = cache.cached(ttl=timedelta(hours=1))(lookup)
    if await cached_lookup(7) != await lookup(7):
        raise RuntimeError("the cache does not return what the function returns")
    return await compare({
        "bare": lambda: lookup(7),
        "breaker": lambda: breaker.call(lookup, 7),
        "breaker, consecutive": lambda: consecutive.call(lookup, 7),
        "cache hit": lambda: cached_lookup(7),
    })  # fmt: skip


def main() -> None:
    """Print calls per second, the cost per call over a bare call, and the ratio."""
    rates = asyncio.run(measure())
    bare = rates["bare"]
    print("Resilience helpers: awaited calls of a trivial async function")
    print(f"{'':>21} {'calls/s':>10} {'us/call':>8} {'extra us':>9} {'ratio':>6}")
    for name, rate in rates.items():
        extra = 1e6 / rate - 1e6 / bare
        print(f"{name:>21} {rate:>10.0f} {1e6 / rate:>8.2f} {extra:>9.2f} {rate / bare:>6.2f}")
    print(
        "  breaker: count window of 100 calls, failure rate threshold 0.5, with metrics.\n"
        "  cache hit: the first (in-memory) tier, decoding the stored payload on every hit\n"
        "  so that callers never share a mutable result. ratio: calls/s over the bare call."
    )


if __name__ == "__main__":
    main()
