"""Observability: what a worker process sets up once to be seen, from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import prometheus_client
import temporalio.runtime

from shadow_sdk._exceptions import SettingsError
from shadow_sdk.observability._logging import configure_logging
from shadow_sdk.observability._polls import PollHealth
from shadow_sdk.observability._prometheus import (
    BUFFER_SIZE,
    TemporalMetricsCollector,
    registry_for,
)
from shadow_sdk.observability._tracing import require_tracing, shut_down_tracing

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

DRAIN_INTERVAL = 0.25
"""Seconds between drains of the metric buffer, scrape or not (see ``BUFFER_SIZE``)."""


@dataclass
class Observability:
    """The logging, metrics runtime, Prometheus registry and tracing of one process.

    Use it as an async context manager around the process's work: meanwhile it
    drains the metric buffer four times a second, so that nothing is dropped when
    nobody scrapes, and on exit it flushes the spans still buffered, for 3 s
    at most: a collector that is down delays the exit by no more.

    Attributes:
        runtime: The Temporal runtime whose metrics reach :attr:`registry`; clients
            must be created with it (``connect(settings, runtime=...)``).
        collector: Turns the runtime's buffered metrics into Prometheus metrics.
        registry: The Prometheus registry the ops server exposes.
        tracer_provider: The OpenTelemetry tracer provider, when tracing is on.
        polls: Whether the runtime's workers' polls reach Temporal, from the
            collector's updates; :class:`~shadow_sdk.ShadowWorker` turns ``/ready``
            off while they fail.
    """

    runtime: temporalio.runtime.Runtime
    collector: TemporalMetricsCollector
    registry: prometheus_client.CollectorRegistry
    tracer_provider: Any = None
    polls: PollHealth = field(default_factory=PollHealth)
    _drain: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.collector.add_listener(self.polls.observe)

    @classmethod
    def install(cls, settings: ShadowSettings) -> Observability:
        """Configure logging, metrics and tracing of this process from ``settings``.

        The metrics runtime also becomes Temporal's default runtime, so that
        clients connected without an explicit runtime report into it too. A
        versioned worker's deployment name and build id
        (``TEMPORAL_DEPLOYMENT_NAME``, ``TEMPORAL_WORKER_BUILD_ID``) become fields of
        every log record and labels of every metric the collector exposes, and
        ``shadow_worker_info``, so that the versions of a rollout can be told apart.

        Raises:
            SettingsError: Tracing is configured but OpenTelemetry is not installed.
        """
        fields = version_fields(settings)
        configure_logging(level=settings.log_level, format=settings.log_format, fields=fields)
        runtime, buffer = create_runtime()
        temporalio.runtime.Runtime.set_default(runtime, error_if_already_set=False)
        provider = None
        if settings.otel_exporter_otlp_endpoint:
            try:
                otel = require_tracing()
            except ImportError as error:
                raise SettingsError([f"OTEL_EXPORTER_OTLP_ENDPOINT: {error}"]) from None
            provider = otel.configure_tracing(
                endpoint=settings.otel_exporter_otlp_endpoint,
                service_name=settings.otel_service_name,
                default_service_name=settings.temporal_task_queue or "worker",
            )
        collector = TemporalMetricsCollector(buffer, labels=fields)
        return cls(
            runtime=runtime,
            collector=collector,
            registry=registry_for(collector),
            tracer_provider=provider,
        )

    async def __aenter__(self) -> Self:
        self._drain = asyncio.create_task(self._drain_periodically())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        if self.tracer_provider is not None:
            await shut_down_tracing(self.tracer_provider)

    async def _drain_periodically(self) -> None:
        while True:
            await asyncio.sleep(DRAIN_INTERVAL)
            await asyncio.to_thread(self.collector.drain)


def version_fields(settings: ShadowSettings) -> dict[str, str]:
    """``deployment_name`` and ``build_id`` of a versioned worker; nothing for an unversioned one.

    The Worker Deployment Version a process runs as is fixed for its life, so its logs
    and metrics carry it, as fields and labels with these names.
    """
    name, build_id = settings.temporal_deployment_name, settings.temporal_worker_build_id
    if name is None or build_id is None:
        return {}
    return {"deployment_name": name, "build_id": build_id}


def create_runtime() -> tuple[temporalio.runtime.Runtime, temporalio.runtime.MetricBuffer]:
    """A Temporal runtime that reports through Python: metrics to a buffer, logs to logging.

    Metrics, the SDK core's and those made with its meters, go to the returned
    buffer with durations in seconds (:class:`TemporalMetricsCollector` turns
    them into Prometheus metrics). The core's own log lines go to the
    ``temporalio.core`` logger instead of being printed by the core, so they get
    the process's log format too.
    """
    buffer = temporalio.runtime.MetricBuffer(
        BUFFER_SIZE, duration_format=temporalio.runtime.MetricBufferDurationFormat.SECONDS
    )
    logs = temporalio.runtime.LoggingConfig(
        filter=temporalio.runtime.TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=temporalio.runtime.LogForwardingConfig(
            logger=logging.getLogger("temporalio.core")
        ),
    )
    runtime = temporalio.runtime.Runtime(
        telemetry=temporalio.runtime.TelemetryConfig(
            metrics=buffer, logging=logs, attach_service_name=False
        )
    )
    return runtime, buffer
