"""Per-call overhead of a circuit breaker and of a result cache hit, next to a bare call.

Run with ``nox -s bench -- resilience``. Each contender is timed for short
rounds, alternating with the others round by round so that all see the same
machine. The guarded function does almost nothing, so the table shows what the
helpers themselves cost per call: the extra microseconds are what to read, and
against an activity that does real I/O (milliseconds) they vanish.

Time is the CPU time of the calling thread, where the helpers run, so that
other processes on a shared machine do not count; they still slow it down
(caches, memory bandwidth, frequency), so there are two figures per contender:
the median round, on which the targets are judged, and the best one, which is
the closest to what the code itself costs (as ``timeit`` advises). The load
average is printed so that both can be read in context.

Two metric set-ups are measured. In the first the helpers' meter belongs to a
Temporal runtime without an exporter, so the figures are the helpers' own cost.
In the second it is a worker's: the runtime ``run_worker`` makes, whose metric
buffer the Prometheus collector drains (here every 1,000 calls, inside the timed
loop), so the figures include what exporting one counter update per call costs.

Before timing, the run checks what the speed must not cost: a cache hit hands
every caller an object of its own, and a breaker counts every one of a thousand
concurrent calls.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio.runtime import Runtime, TelemetryConfig

from shadow_sdk.observability import TemporalMetricsCollector, create_runtime
from shadow_sdk.resilience import CircuitBreaker, ResultCache

ROUNDS = 25
ROUND_SECONDS = 0.05
DRAIN_EVERY = 1000
TARGETS = {"breaker": 3.0, "breaker, consecutive": 3.0, "cache hit": 15.0}
"""Most extra microseconds per call over the bare call (median rounds), metrics recorded nowhere."""

Operation = Callable[[], Awaitable[object]]


async def per_second(operation: Operation, drain: Callable[[], None]) -> float:
    """Awaited calls per CPU second of this thread, for about ROUND_SECONDS of it."""
    count, started = 0, time.thread_time()
    while time.thread_time() - started < ROUND_SECONDS:
        for _ in range(100):
            await operation()
        count += 100
        if count % DRAIN_EVERY == 0:
            drain()
    drain()
    return count / (time.thread_time() - started)


async def compare(
    contenders: dict[str, tuple[Operation, Callable[[], None]]],
) -> dict[str, list[float]]:
    """Calls per second of each contender in every round, measured in alternation."""
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, (operation, drain) in contenders.items():
            rounds[name].append(await per_second(operation, drain))
    return rounds


async def lookup(customer_id: int) -> dict[str, int]:
    """The guarded call: as cheap as an async function gets."""
    return {"customer_id": customer_id, "tier": 2}


async def check_guarantees(runtime: Runtime) -> None:
    """What the fast paths must keep: no shared result, exact counts under concurrency."""
    cache = ResultCache("check", metric_meter=runtime.metric_meter)
    cached_lookup = cache.cached(ttl=timedelta(hours=1))(lookup)
    first, second = await cached_lookup(8), await cached_lookup(8)
    first["tier"] = 99
    if second is first or second != await lookup(8) or await cached_lookup(8) != await lookup(8):
        raise RuntimeError("a cache hit shared a mutable result")
    breaker = CircuitBreaker(
        "check", window_size=1000, minimum_calls=1000, metric_meter=runtime.metric_meter
    )

    async def one(index: int) -> None:
        await asyncio.sleep(0.001 * (index % 7))

    await asyncio.gather(*(breaker.call(one, index) for index in range(1000)))
    if breaker.stats.calls != 1000:
        raise RuntimeError(f"the breaker counted {breaker.stats.calls} of 1000 concurrent calls")


def contenders_for(
    runtime: Runtime, drain: Callable[[], None], label: str
) -> dict[str, tuple[Operation, Callable[[], None]]]:
    """The helpers reporting to ``runtime``'s meter, named with ``label``."""
    meter = runtime.metric_meter
    breaker = CircuitBreaker(f"bench{label}", failure_rate_threshold=0.5, metric_meter=meter)
    consecutive = CircuitBreaker(
        f"bench-consecutive{label}", consecutive_failures=5, metric_meter=meter
    )
    cache = ResultCache(f"bench{label}", metric_meter=meter)
    cached_lookup = cache.cached(ttl=timedelta(hours=1))(lookup)
    return {
        f"breaker{label}": (lambda: breaker.call(lookup, 7), drain),
        f"breaker, consecutive{label}": (lambda: consecutive.call(lookup, 7), drain),
        f"cache hit{label}": (lambda: cached_lookup(7), drain),
    }


async def measure() -> dict[str, list[float]]:
    """Calls per second of a bare call and of each helper around it, in both set-ups."""
    quiet = Runtime(telemetry=TelemetryConfig())
    worker_runtime, buffer = create_runtime()
    collector = TemporalMetricsCollector(buffer)
    await check_guarantees(quiet)

    def nothing() -> None:
        pass

    contenders: dict[str, tuple[Operation, Callable[[], None]]] = {
        "bare": (lambda: lookup(7), nothing),
        **contenders_for(quiet, nothing, ""),
        **contenders_for(worker_runtime, collector.drain, " +export"),
    }
    for operation, _ in contenders.values():  # Fill the caches: every hit is measured.
        await operation()
    return await compare(contenders)


def main() -> None:
    """Print calls per second, the cost per call over a bare call, and the target."""
    rounds = asyncio.run(measure())
    median = {name: statistics.median(values) for name, values in rounds.items()}
    best = {name: max(values) for name, values in rounds.items()}
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Resilience helpers: awaited calls of a trivial async function (load {load})")
    print("calls/s: calls per CPU second of the calling thread")
    print(
        f"{'':>29} {'calls/s':>10} {'us/call':>8} {'extra us':>9} {'ratio':>6}"
        f" {'best extra':>11} {'target':>11}"
    )
    for name in rounds:
        extra = 1e6 / median[name] - 1e6 / median["bare"]
        best_extra = 1e6 / best[name] - 1e6 / best["bare"]
        target = TARGETS.get(name)
        verdict = (
            "" if target is None else f"<= {target:g} " + ("ok" if extra <= target else "MISS")
        )
        print(
            f"{name:>29} {median[name]:>10.0f} {1e6 / median[name]:>8.2f} {extra:>9.2f}"
            f" {median[name] / median['bare']:>6.2f} {best_extra:>11.2f} {verdict:>11}"
        )
    print(
        "  calls/s, us/call, extra us, ratio: the median round; best extra: the fastest round\n"
        "  of each, against the fastest bare round. ratio: calls/s over the bare call.\n"
        "  breaker: count window of 100 calls, failure rate threshold 0.5.\n"
        "  cache hit: the first (in-memory) tier, decoding the stored payload on every hit\n"
        "  so that callers never share a mutable result.\n"
        "  +export: metrics to a worker's runtime, whose buffer the Prometheus collector\n"
        "  drains every 1,000 calls; without it, to a runtime that exports nothing."
    )


if __name__ == "__main__":
    main()
