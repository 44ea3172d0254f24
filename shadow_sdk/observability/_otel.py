"""The OpenTelemetry side of tracing, imported only when tracing is on."""

from __future__ import annotations

import opentelemetry.trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import (
    OpenTelemetryInterceptor,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

__all__ = ["OpenTelemetryInterceptor", "configure_tracing"]


def configure_tracing(*, endpoint: str, service_name: str) -> ReplaySafeTracerProvider:
    """Export spans to an OTLP/HTTP endpoint from a replay-safe global tracer provider.

    The provider comes from temporalio's ``create_tracer_provider``: span ids
    made inside workflows are deterministic and spans are not ended again when
    a worker replays a history, so a workflow run is one span however often it
    is replayed. Tracing interceptors read the global provider when a worker
    starts, so call this before creating workers.

    Args:
        endpoint: Base URL of the collector, as in ``OTEL_EXPORTER_OTLP_ENDPOINT``
            (``/v1/traces`` is appended).
        service_name: ``service.name`` of the spans.

    Returns:
        The provider; call its ``shutdown()`` before the process exits to flush spans.
    """
    provider = create_tracer_provider(resource=Resource.create({SERVICE_NAME: service_name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    opentelemetry.trace.set_tracer_provider(provider)
    return provider
