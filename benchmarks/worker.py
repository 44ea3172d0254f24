"""What ShadowPlugin costs a real worker: workflows per second, latency, CPU and memory.

Run with ``nox -s bench``, or ``python benchmarks/worker.py --workflows 300
--concurrency 50``; it needs the ``testing`` and ``tracing`` extras (the dev
server's binary and OpenTelemetry). Each round starts a fresh process per
variant, with its own Temporal dev server, that runs the same workflow (one
activity, about 1 KiB in and out, from ``_bench_workflows.py``) ``--workflows``
times, ``--concurrency`` at a time, after an unmeasured warm-up:

* **bare**: plain temporalio, a ``Client`` with the default data converter and a
  ``Worker``, no plugins;
* **full**: the same ``Worker`` on a client with ``ShadowPlugin`` and every feature
  on, set up as a production process is: AES-GCM payload encryption (headers
  too), a token on every call verified and authorized on the worker, metrics
  through a buffered runtime drained every second by ``Observability``, and
  tracing through a replay-safe tracer provider. Spans go through a
  ``BatchSpanProcessor``, the processor production uses, to an exporter that
  counts them and lets them go: ending a span costs what it costs in
  production, only the export (OTLP serialization and HTTP, on the processor's
  thread) is left out. Afterwards the process checks that
  the features were really on: payloads in history are encrypted, every
  workflow and activity left its spans and ``shadow_workflows_closed_total``
  counted every workflow.

The variants alternate round by round, so that both see the same machine, and
each figure is the median of the rounds. Throughput is workflows over the wall
time from the first start to the last result; latency runs from one workflow's
start call to its result, queueing behind the other workflows in flight
included. CPU seconds are those of the benchmark process during the measured
workflows: the client and the worker (its Python threads and the SDK core's
threads) run in that process, the dev server runs in another and is not
counted, though it shares the machine. Peak RSS is that of the whole process.
Read the ratios, full over bare: the absolute figures depend on the machine.
On a small machine the worker process and the dev server compete for the
cores, so throughput follows CPU; CPU per workflow is the steadier figure.

``--without codec`` (or ``auth``, ``metrics``, ``tracing``; repeatable) turns a
feature off in the full variant, to see what each one costs. ``--stock`` adds a
third variant, **stock**, with the same features built from temporalio's own
pieces and its samples (``_stock.py``; it has no authorization, so pair it with
``--without auth``): full over stock is what the kit adds to what the features
cost however they are built.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import prometheus_client
import temporalio.client
import temporalio.converter
import temporalio.worker
from _bench_workflows import Order, OrderWorkflow, confirm_order
from prometheus_client.parser import text_string_to_metric_families

from shadow_sdk import ShadowPlugin, run_and_exit
from shadow_sdk.auth import AuthInterceptor, Authorizer, Policy, TokenIssuer, TokenVerifier
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.observability import (
    Observability,
    TemporalMetricsCollector,
    create_runtime,
    registry_for,
)
from shadow_sdk.testing import start_dev_server

if TYPE_CHECKING:
    from _span_counter import SpanCounter
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

WORKFLOWS = 300
CONCURRENCY = 50
WARMUP = 20
PAYLOAD_BYTES = 1024
ORDER_OVERHEAD_BYTES = 122
"""Bytes of an order besides its note, in the compact JSON the data converter writes."""
ROUNDS = 5
TARGET_THROUGHPUT = 0.95
"""Least throughput of the full variant, as a fraction of bare's, that the plugin aims for."""
TARGET_CPU = 1.10
"""Most CPU per workflow of the full variant, as a multiple of bare's."""
TARGET_RSS_MIB = 15.0
"""Most peak memory the full variant may add to bare's."""
VARIANTS = ("bare", "full")
STOCK = "stock"
FEATURES = ("codec", "auth", "metrics", "tracing")
SECRET = "benchmark-secret-of-at-least-32-bytes"  # noqa: S105  A throwaway key.
RESULT_MARKER = "RESULT "
# One partition per task queue instead of the dev server's four: a task that lands on
# a partition with no poll waiting there is forwarded seconds later, which gave about
# one workflow in five a 3-second detour in both variants, however fast the worker.
DEV_SERVER_ARGS = tuple(
    arg
    for name in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions")
    for arg in ("--dynamic-config-value", f"{name}=1")
)


def new_order(index: int, payload_bytes: int = PAYLOAD_BYTES) -> Order:
    """The ``index``-th order; the note pads its JSON to about ``payload_bytes``."""
    return Order(
        order_id=f"order-{index:06d}",
        customer="customer-4711",
        amount_cents=12_345,
        currency="EUR",
        status="received",
        note="x" * max(payload_bytes - ORDER_OVERHEAD_BYTES, 0),
    )


@dataclass(frozen=True)
class Measurement:
    """What one variant's process measured, sent to the parent as one JSON line."""

    variant: str
    throughput: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float
    rss_mib: float


def cpu_seconds() -> float:
    """User and system CPU seconds of this process so far, all of its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1 << 20 if sys.platform == "darwin" else 1 << 10)


async def run_workflows(
    client: temporalio.client.Client,
    task_queue: str,
    count: int,
    concurrency: int,
    payload_bytes: int = PAYLOAD_BYTES,
) -> tuple[list[float], float]:
    """Run ``count`` workflows, ``concurrency`` at a time: latencies and wall time in seconds."""
    slots = asyncio.Semaphore(concurrency)
    batch = uuid.uuid4().hex[:8]

    async def one(index: int) -> float:
        order = new_order(index, payload_bytes)
        async with slots:
            started = time.perf_counter()
            result = await client.execute_workflow(
                OrderWorkflow.run, order, id=f"{batch}-{index}", task_queue=task_queue
            )
            latency = time.perf_counter() - started
        if result != dataclasses.replace(order, status="confirmed"):
            raise RuntimeError(f"workflow {index} returned {result!r}")
        return latency

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(index) for index in range(count)))
    return list(latencies), time.perf_counter() - started


async def measure(
    variant: str,
    client: temporalio.client.Client,
    *,
    workflows: int,
    concurrency: int,
    warmup: int,
    payload_bytes: int = PAYLOAD_BYTES,
) -> Measurement:
    """Warm a worker up, then measure ``workflows`` workflows on it."""
    task_queue = f"bench-{uuid.uuid4()}"
    async with temporalio.worker.Worker(
        client, task_queue=task_queue, workflows=[OrderWorkflow], activities=[confirm_order]
    ):
        await run_workflows(client, task_queue, warmup, concurrency, payload_bytes)
        cpu_before = cpu_seconds()
        latencies, wall = await run_workflows(
            client, task_queue, workflows, concurrency, payload_bytes
        )
        cpu = cpu_seconds() - cpu_before
    return Measurement(
        variant=variant,
        throughput=workflows / wall,
        p50_ms=statistics.median(latencies) * 1e3,
        p99_ms=statistics.quantiles(latencies, n=100)[98] * 1e3,
        cpu_seconds=cpu,
        rss_mib=peak_rss_mib(),
    )


async def run_bare(
    *, workflows: int, concurrency: int, warmup: int, payload_bytes: int = PAYLOAD_BYTES
) -> Measurement:
    """Measure plain temporalio: default data converter, no plugins, default runtime."""
    # The environment's own client carries a ShadowPlugin; the measured client does not.
    async with await start_dev_server(dev_server_extra_args=DEV_SERVER_ARGS) as env:
        client = await temporalio.client.Client.connect(
            env.client.service_client.config.target_host, namespace=env.client.namespace
        )
        return await measure(
            "bare",
            client,
            workflows=workflows,
            concurrency=concurrency,
            warmup=warmup,
            payload_bytes=payload_bytes,
        )


async def run_full(
    *,
    workflows: int,
    concurrency: int,
    warmup: int,
    without: frozenset[str],
    payload_bytes: int = PAYLOAD_BYTES,
) -> Measurement:
    """Measure ShadowPlugin with every feature not in ``without``, then check they were on."""
    features = frozenset(FEATURES) - without
    tracing = install_tracing() if "tracing" in features else None
    auth = AuthInterceptor(
        token=TokenIssuer(hs256_secret=SECRET).issue("bench", ["admin"]),
        authorizer=Authorizer(TokenVerifier(hs256_secret=SECRET), Policy.default()),
    )
    plugin = ShadowPlugin(
        codec=EncryptionCodec(KeyRing({"bench": bytes(range(32))}))
        if "codec" in features
        else None,
        auth=auth if "auth" in features else None,
        metrics="metrics" in features,
        tracing="tracing" in features,
    )
    options: dict[str, Any] = {"dev_server_extra_args": DEV_SERVER_ARGS}
    observability = None
    if "metrics" in features:
        runtime, buffer = create_runtime()
        collector = TemporalMetricsCollector(buffer)
        observability = Observability(
            runtime=runtime, collector=collector, registry=registry_for(collector)
        )
        options["runtime"] = runtime
    async with contextlib.AsyncExitStack() as stack:
        if observability is not None:
            await stack.enter_async_context(observability)
        env = await stack.enter_async_context(await start_dev_server(plugin=plugin, **options))
        result = await measure(
            "full",
            env.client,
            workflows=workflows,
            concurrency=concurrency,
            warmup=warmup,
            payload_bytes=payload_bytes,
        )
        if "codec" in features:
            await check_encrypted(env.client)
    total = warmup + workflows
    if tracing is not None:
        provider, exporter = tracing
        await asyncio.to_thread(provider.shutdown)
        check_spans(exporter, total)
    if observability is not None:
        check_metrics(observability.registry, total)
    return result


async def run_stock(
    *, workflows: int, concurrency: int, warmup: int, payload_bytes: int = PAYLOAD_BYTES
) -> Measurement:
    """Measure codec, tracing and metrics as temporalio alone offers them; check they were on."""
    import opentelemetry.trace  # noqa: PLC0415
    from _span_counter import SpanCounter  # noqa: PLC0415
    from _stock import SamplesEncryptionCodec, prometheus_runtime  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    from temporalio.contrib.opentelemetry import (  # noqa: PLC0415
        OpenTelemetryPlugin,
        create_tracer_provider,
    )

    exporter = SpanCounter()
    provider = create_tracer_provider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    opentelemetry.trace.set_tracer_provider(provider)
    runtime, metrics_address = prometheus_runtime()
    async with await start_dev_server(dev_server_extra_args=DEV_SERVER_ARGS) as env:
        client = await temporalio.client.Client.connect(
            env.client.service_client.config.target_host,
            namespace=env.client.namespace,
            runtime=runtime,
            data_converter=dataclasses.replace(
                temporalio.converter.DataConverter.default,
                payload_codec=SamplesEncryptionCodec(bytes(range(32))),
            ),
            plugins=[OpenTelemetryPlugin(add_temporal_spans=True)],
        )
        result = await measure(
            STOCK,
            client,
            workflows=workflows,
            concurrency=concurrency,
            warmup=warmup,
            payload_bytes=payload_bytes,
        )
        await check_encrypted(client)
        scraped = await asyncio.to_thread(scrape, f"http://{metrics_address}/metrics")
    await asyncio.to_thread(provider.shutdown)
    total = warmup + workflows
    check_spans(exporter, total)
    completed = sum(
        sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "temporal_workflow_completed_total"
    )
    if completed != total:
        raise RuntimeError(f"temporal_workflow_completed counted {completed:g}, not {total}")
    return result


def scrape(url: str) -> str:
    """The text a metrics endpoint serves."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  A local http URL.
        body: bytes = response.read()
    return body.decode()


def install_tracing() -> tuple[ReplaySafeTracerProvider, SpanCounter]:
    """Make a replay-safe tracer provider, counting the spans it exports, the global one.

    Tracing interceptors take the global provider when clients and workers are
    made, so this comes first. OpenTelemetry is imported here, not at the top,
    so that it is not in the bare variant's memory.

    Returns:
        The provider, to shut down, and the exporter that counts the spans.
    """
    import opentelemetry.trace  # noqa: PLC0415
    from _span_counter import SpanCounter  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    from shadow_sdk.observability import create_tracer_provider  # noqa: PLC0415

    exporter = SpanCounter()
    provider = create_tracer_provider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    opentelemetry.trace.set_tracer_provider(provider)
    return provider, exporter


async def check_encrypted(client: temporalio.client.Client) -> None:
    """Raise unless the input of a workflow in history is encrypted."""
    async for execution in client.list_workflows(limit=1):
        history = await client.get_workflow_handle(execution.id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        encoding = started.input.payloads[0].metadata["encoding"]
        if encoding != b"binary/encrypted":
            raise RuntimeError(f"the workflow's input is stored as {encoding!r}, unencrypted")
        return
    raise RuntimeError("no workflow to check encryption on")


def check_spans(exporter: SpanCounter, total: int) -> None:
    """Raise unless every workflow and activity ran in a span."""
    for name in ("RunWorkflow:OrderWorkflow", "RunActivity:confirm_order"):
        if (count := exporter.count(name)) != total:
            raise RuntimeError(f"{count} {name} spans, not {total}")


def check_metrics(registry: prometheus_client.CollectorRegistry, total: int) -> None:
    """Raise unless ``shadow_workflows_closed_total`` counted every workflow completed."""
    scraped = prometheus_client.generate_latest(registry).decode()
    completed = sum(
        sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "shadow_workflows_closed_total"
        and sample.labels.get("outcome") == "completed"
    )
    if completed != total:
        raise RuntimeError(f"shadow_workflows_closed_total counted {completed:g}, not {total}")


async def run_child(arguments: argparse.Namespace) -> None:
    """Measure one variant in this process and print the result on a marked line."""
    sizes = {
        "workflows": arguments.workflows,
        "concurrency": arguments.concurrency,
        "warmup": arguments.warmup,
        "payload_bytes": arguments.payload_bytes,
    }
    if arguments.variant == "bare":
        result = await run_bare(**sizes)
    elif arguments.variant == STOCK:
        result = await run_stock(**sizes)
    else:
        result = await run_full(**sizes, without=frozenset(arguments.without))
    print(RESULT_MARKER + json.dumps(dataclasses.asdict(result)))


def spawn(variant: str, arguments: argparse.Namespace) -> Measurement:
    """Measure ``variant`` in a fresh process of its own."""
    command = [
        sys.executable,
        __file__,
        f"--variant={variant}",
        f"--workflows={arguments.workflows}",
        f"--concurrency={arguments.concurrency}",
        f"--warmup={arguments.warmup}",
        f"--payload-bytes={arguments.payload_bytes}",
        *(f"--without={feature}" for feature in arguments.without),
    ]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, timeout=600)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return Measurement(**json.loads(line.removeprefix(RESULT_MARKER)))
    raise RuntimeError(f"{variant} printed no result: {completed.stdout!r}")


def median(measurements: Sequence[Measurement], variant: str) -> Measurement:
    """The median of each figure over ``measurements``."""
    return Measurement(
        variant=variant,
        throughput=statistics.median(m.throughput for m in measurements),
        p50_ms=statistics.median(m.p50_ms for m in measurements),
        p99_ms=statistics.median(m.p99_ms for m in measurements),
        cpu_seconds=statistics.median(m.cpu_seconds for m in measurements),
        rss_mib=statistics.median(m.rss_mib for m in measurements),
    )


def report(rounds: dict[str, list[Measurement]], arguments: argparse.Namespace) -> None:
    """Print the medians side by side, with the ratios full over bare."""
    bare, full = (median(rounds[variant], variant) for variant in VARIANTS)
    without = f", full without {', '.join(arguments.without)}" if arguments.without else ""
    print(
        f"Worker: {arguments.workflows} workflows of one activity, {arguments.concurrency} in "
        f"flight, {arguments.payload_bytes} B payloads, median of {arguments.rounds} "
        f"rounds{without}"
    )
    print(f"{'':>9} {'wf/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'CPU s':>7} {'RSS MiB':>8}")
    for row in (bare, full):
        print(
            f"{row.variant:>9} {row.throughput:>7.1f} {row.p50_ms:>8.1f} {row.p99_ms:>8.1f} "
            f"{row.cpu_seconds:>7.2f} {row.rss_mib:>8.1f}"
        )
    throughput = full.throughput / bare.throughput
    print(
        f"{'full/bare':>9} {throughput:>7.2f} {full.p50_ms / bare.p50_ms:>8.2f} "
        f"{full.p99_ms / bare.p99_ms:>8.2f} {full.cpu_seconds / bare.cpu_seconds:>7.2f} "
        f"{full.rss_mib - bare.rss_mib:>+8.1f}"
    )
    cpu, rss = full.cpu_seconds / bare.cpu_seconds, full.rss_mib - bare.rss_mib
    for figure, target, met in (
        (
            f"throughput {throughput:.2f}",
            f">= {TARGET_THROUGHPUT}",
            throughput >= TARGET_THROUGHPUT,
        ),
        (f"CPU {cpu:.2f}x", f"<= {TARGET_CPU}x", cpu <= TARGET_CPU),
        (f"RSS {rss:+.1f} MiB", f"<= +{TARGET_RSS_MIB:g} MiB", rss <= TARGET_RSS_MIB),
    ):
        print(f"  {figure}, target {target}: {'met' if met else 'NOT met'}")
    bare_cpu, full_cpu = (row.cpu_seconds / arguments.workflows * 1e3 for row in (bare, full))
    print(
        f"  CPU per workflow: bare {bare_cpu:.1f} ms, full {full_cpu:.1f} ms "
        f"({full_cpu - bare_cpu:+.1f} ms)"
    )
    # Each round's pair ran back to back: the spread of their ratios shows how much of a
    # difference between the medians the machine's own variation could explain.
    pairs = [
        pair.cpu_seconds / alone.cpu_seconds
        for alone, pair in zip(rounds["bare"], rounds["full"], strict=True)
    ]
    print(
        f"  CPU full/bare round by round: {' '.join(f'{ratio:.2f}' for ratio in pairs)} "
        f"(median {statistics.median(pairs):.2f})"
    )
    for variant in VARIANTS:
        figures = " ".join(f"{m.throughput:.1f}" for m in rounds[variant])
        print(f"  {variant} wf/s by round: {figures}")
    print(
        "  CPU s: the benchmark process (client and worker) during the measured\n"
        "  workflows; the dev server is not counted. RSS: the process's peak; the\n"
        "  ratio row shows full minus bare in MiB."
    )


def report_stock(rounds: dict[str, list[Measurement]]) -> None:
    """Print the stock variant beside the others: what the features cost, what the kit adds."""
    bare, stock, full = (median(rounds[variant], variant) for variant in ("bare", STOCK, "full"))
    print("\nStock: codec, tracing and metrics from temporalio's own pieces (no auth)")
    print(f"{'':>10} {'wf/s':>7} {'CPU s':>7} {'RSS MiB':>8}")
    print(f"{STOCK:>10} {stock.throughput:>7.1f} {stock.cpu_seconds:>7.2f} {stock.rss_mib:>8.1f}")
    for label, over, under in (("stock/bare", stock, bare), ("full/stock", full, stock)):
        print(
            f"{label:>10} {over.throughput / under.throughput:>7.2f} "
            f"{over.cpu_seconds / under.cpu_seconds:>7.2f} {over.rss_mib - under.rss_mib:>+8.1f}"
        )
    for label, numerator, denominator in (
        ("stock/bare", STOCK, "bare"),
        ("full/stock", "full", STOCK),
    ):
        pairs = [
            a.cpu_seconds / b.cpu_seconds
            for a, b in zip(rounds[numerator], rounds[denominator], strict=True)
        ]
        print(
            f"  CPU {label} round by round: {' '.join(f'{ratio:.2f}' for ratio in pairs)} "
            f"(median {statistics.median(pairs):.2f})"
        )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workflows", type=int, default=WORKFLOWS, help="measured per round")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="in flight")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="unmeasured, first")
    parser.add_argument(
        "--payload-bytes", type=int, default=PAYLOAD_BYTES, help="JSON size of each payload"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="of each variant")
    parser.add_argument(
        "--without",
        action="append",
        choices=FEATURES,
        default=[],
        help="turn a feature of the full variant off (repeatable)",
    )
    parser.add_argument(
        "--stock",
        action="store_true",
        help="also measure the features built from temporalio's own pieces (see _stock.py)",
    )
    parser.add_argument("--variant", choices=(*VARIANTS, STOCK), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    """Alternate the variants round by round, each in a fresh process; print the table."""
    arguments = parse()
    if arguments.variant is not None:
        # The SDK core's threads can abort a normal interpreter exit; this exits cleanly.
        run_and_exit(run_child(arguments))
    variants = (*VARIANTS, STOCK) if arguments.stock else VARIANTS
    rounds: dict[str, list[Measurement]] = {variant: [] for variant in variants}
    for _ in range(arguments.rounds):
        for variant in variants:
            rounds[variant].append(spawn(variant, arguments))
    report(rounds, arguments)
    if arguments.stock:
        report_stock(rounds)


if __name__ == "__main__":
    main()
