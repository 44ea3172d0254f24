"""Does a worker's memory stay flat? Tens of thousands of short workflows through one worker.

Run with ``nox -s bench -- soak``, or ``python benchmarks/soak.py --workflows 20000``;
it needs the ``testing`` and ``tracing`` extras. Each variant runs in a fresh
process of its own, with its own Temporal dev server, one after the other in the
same run, and pushes ``--workflows`` workflows (one activity each, about 1 KiB in
and out, from ``_bench_workflows.py``) through one worker, ``--concurrency`` at a
time, after ``--warmup`` unmeasured ones:

* **bare**: plain temporalio, a ``Client`` with the default data converter and a
  ``Worker``, no plugins;
* **full**: ``ShadowPlugin`` with every feature on, set up as a production process
  is: AES-GCM payload encryption (headers too), a token on every call verified and
  authorized on the worker, metrics through a buffered runtime drained every second
  by ``Observability`` and scraped as Prometheus would, and tracing through a
  replay-safe tracer provider whose ``BatchSpanProcessor`` hands the spans to an
  exporter that counts and drops them (only the export itself is left out).

Each process reads its own resident set size (``VmRSS``, not the peak) after the
warm-up and then after every tenth of the workflows, and reports the growth ratio:
RSS at the end over RSS after the warm-up. A worker that keeps something per
workflow grows with the number of workflows; one that does not levels off. The
full variant's figure is compared with bare's, measured on the same machine in the
same run: memory the Python runtime, the SDK core and the allocator take on their
own shows in both. The full variant also reports how many entries the metrics
collector holds, which must not grow with the number of workflows, and checks
that every workflow was counted, encrypted and traced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import prometheus_client
import temporalio.client
import temporalio.worker
from _bench_workflows import OrderWorkflow, confirm_order
from worker import (
    DEV_SERVER_ARGS,
    SECRET,
    check_encrypted,
    check_metrics,
    run_workflows,
)

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
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

WORKFLOWS = 20_000
WARMUP = 1_000
CONCURRENCY = 50
CHECKPOINTS = 10
BATCH = 500
"""Workflows started together; batches keep the client's own bookkeeping small."""
TARGET = 1.10
"""Largest ratio of the full variant's growth ratio to bare's that counts as flat."""
VARIANTS = ("bare", "full")
RESULT_MARKER = "RESULT "


@dataclass(frozen=True)
class Measurement:
    """What one variant's process measured, sent to the parent as one JSON line."""

    variant: str
    workflows: int
    seconds: float
    rss_warm_mib: float
    rss_end_mib: float
    checkpoints_mib: list[float]
    collector_entries: list[int] = field(default_factory=list)

    @property
    def growth(self) -> float:
        """RSS at the end over RSS after the warm-up."""
        return self.rss_end_mib / self.rss_warm_mib


def rss_mib() -> float:
    """Resident set size of this process now, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class DroppingExporter:
    """A span exporter that counts spans by name and keeps none of them."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count ``spans``."""
        from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: PLC0415

        for span in spans:
            self.counts[span.name] = self.counts.get(span.name, 0) + 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here."""
        return True


async def soak(
    client: temporalio.client.Client,
    arguments: argparse.Namespace,
    *,
    collector: TemporalMetricsCollector | None = None,
    registry: prometheus_client.CollectorRegistry | None = None,
) -> tuple[float, float, list[float], list[int]]:
    """Warm up, then run the workflows, reading RSS at each checkpoint.

    Returns:
        Seconds of the measured part, RSS after the warm-up, RSS at each
        checkpoint, and the collector's entries at each checkpoint.
    """
    task_queue = f"soak-{uuid.uuid4()}"
    rss: list[float] = []
    entries: list[int] = []

    def checkpoint() -> None:
        if registry is not None:
            prometheus_client.generate_latest(registry)  # A scrape, as Prometheus does.
        gc.collect()
        rss.append(rss_mib())
        if collector is not None:
            entries.append(collector.entries)

    async with temporalio.worker.Worker(
        client, task_queue=task_queue, workflows=[OrderWorkflow], activities=[confirm_order]
    ):
        for _ in range(0, arguments.warmup, BATCH):
            await run_workflows(client, task_queue, BATCH, arguments.concurrency)
        checkpoint()
        warm = rss[0]
        step = arguments.workflows // CHECKPOINTS
        started = time.perf_counter()
        for done in range(0, arguments.workflows, BATCH):
            await run_workflows(client, task_queue, BATCH, arguments.concurrency)
            if (done + BATCH) % step == 0:
                checkpoint()
                print(
                    f"  {arguments.variant}: {done + BATCH} workflows, RSS {rss[-1]:.1f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
        seconds = time.perf_counter() - started
    return seconds, warm, rss[1:], entries[1:]


async def run_bare(arguments: argparse.Namespace) -> Measurement:
    """Soak plain temporalio: default data converter, no plugins, default runtime."""
    async with await start_dev_server(dev_server_extra_args=DEV_SERVER_ARGS) as env:
        client = await temporalio.client.Client.connect(
            env.client.service_client.config.target_host, namespace=env.client.namespace
        )
        seconds, warm, rss, _ = await soak(client, arguments)
    return Measurement("bare", arguments.workflows, seconds, warm, rss[-1], rss)


async def run_full(arguments: argparse.Namespace) -> Measurement:
    """Soak ShadowPlugin with every feature on, then check that each one worked."""
    exporter = install_tracing()
    auth = AuthInterceptor(
        token=TokenIssuer(hs256_secret=SECRET).issue("soak", ["admin"]),
        authorizer=Authorizer(TokenVerifier(hs256_secret=SECRET), Policy.default()),
    )
    plugin = ShadowPlugin(
        codec=EncryptionCodec(KeyRing({"soak": bytes(range(32))})),
        auth=auth,
        tracing=True,
    )
    runtime, buffer = create_runtime()
    collector = TemporalMetricsCollector(buffer)
    observability = Observability(
        runtime=runtime, collector=collector, registry=registry_for(collector)
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(observability)
        env = await stack.enter_async_context(
            await start_dev_server(
                plugin=plugin, runtime=runtime, dev_server_extra_args=DEV_SERVER_ARGS
            )
        )
        seconds, warm, rss, entries = await soak(
            env.client, arguments, collector=collector, registry=observability.registry
        )
        await check_encrypted(env.client)
    import opentelemetry.trace  # noqa: PLC0415

    provider: Any = opentelemetry.trace.get_tracer_provider()
    await asyncio.to_thread(provider.shutdown)
    total = arguments.warmup + arguments.workflows
    for name in ("RunWorkflow:OrderWorkflow", "RunActivity:confirm_order"):
        if exporter.counts.get(name) != total:
            raise RuntimeError(f"{exporter.counts.get(name)} {name} spans, not {total}")
    check_metrics(observability.registry, total)
    return Measurement("full", arguments.workflows, seconds, warm, rss[-1], rss, entries)


def install_tracing() -> DroppingExporter:
    """Make a replay-safe tracer provider, exporting to a counter, the global one."""
    import opentelemetry.trace  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    from temporalio.contrib.opentelemetry import create_tracer_provider  # noqa: PLC0415

    exporter = DroppingExporter()
    provider = create_tracer_provider()
    provider.add_span_processor(BatchSpanProcessor(exporter))  # type: ignore[arg-type]
    opentelemetry.trace.set_tracer_provider(provider)
    return exporter


async def run_child(arguments: argparse.Namespace) -> None:
    """Soak one variant in this process and print the result on a marked line."""
    run = run_bare if arguments.variant == "bare" else run_full
    result = await run(arguments)
    print(RESULT_MARKER + json.dumps(dataclasses.asdict(result)))


def spawn(variant: str, arguments: argparse.Namespace) -> Measurement:
    """Soak ``variant`` in a fresh process of its own."""
    command = [
        sys.executable,
        __file__,
        f"--variant={variant}",
        f"--workflows={arguments.workflows}",
        f"--warmup={arguments.warmup}",
        f"--concurrency={arguments.concurrency}",
    ]
    completed = subprocess.run(
        command, stdout=subprocess.PIPE, text=True, check=True, timeout=4 * 3600
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return Measurement(**json.loads(line.removeprefix(RESULT_MARKER)))
    raise RuntimeError(f"{variant} printed no result: {completed.stdout!r}")


def report(results: dict[str, Measurement], arguments: argparse.Namespace) -> None:
    """Print both variants' RSS over time, their growth ratios, and the verdict."""
    bare, full = results["bare"], results["full"]
    print(
        f"Soak: {arguments.workflows} workflows of one activity through one worker, "
        f"{arguments.concurrency} in flight, after {arguments.warmup} to warm up"
    )
    print(f"{'':>6} {'wf/s':>6} {'warm MiB':>9} {'end MiB':>8} {'growth':>7}  RSS MiB by tenth")
    for row in (bare, full):
        tenths = " ".join(f"{value:.0f}" for value in row.checkpoints_mib)
        print(
            f"{row.variant:>6} {row.workflows / row.seconds:>6.1f} {row.rss_warm_mib:>9.1f} "
            f"{row.rss_end_mib:>8.1f} {row.growth:>7.3f}  {tenths}"
        )
    ratio = full.growth / bare.growth
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"  growth full/bare {ratio:.3f}, target <= {TARGET}: {verdict}")
    print(
        f"  growth in MiB after warm-up: bare {bare.rss_end_mib - bare.rss_warm_mib:+.1f}, "
        f"full {full.rss_end_mib - full.rss_warm_mib:+.1f}"
    )
    entries = " ".join(str(count) for count in full.collector_entries)
    print(f"  metrics collector entries by tenth (full): {entries}")
    print(
        "  growth: VmRSS at the end over VmRSS after the warm-up, each process after\n"
        "  a garbage collection; the dev server runs in another process, not counted."
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workflows", type=int, default=WORKFLOWS, help="measured")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="unmeasured, first")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="in flight")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.workflows % (BATCH * CHECKPOINTS) or arguments.warmup % BATCH:
        parser.error(
            f"--workflows must be a multiple of {BATCH * CHECKPOINTS}, --warmup of {BATCH}"
        )
    return arguments


def main() -> None:
    """Soak each variant in a fresh process, one after the other; print the table."""
    arguments = parse()
    if arguments.variant is not None:
        # The SDK core's threads can abort a normal interpreter exit; this exits cleanly.
        run_and_exit(run_child(arguments))
    results = {variant: spawn(variant, arguments) for variant in VARIANTS}
    report(results, arguments)


if __name__ == "__main__":
    main()
