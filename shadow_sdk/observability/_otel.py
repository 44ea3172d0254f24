"""The OpenTelemetry side of tracing, imported only when tracing is on."""

from __future__ import annotations

import opentelemetry.trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import (
    OpenTelemetryInterceptor,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

__all__ = ["OpenTelemetryInterceptor", "configure_tracing"]


def configure_tracing(
    *, endpoint: str, service_name: str | None, default_service_name: str
) -> ReplaySafeTracerProvider:
    """Export spans to an OTLP/HTTP endpoint from a replay-safe global tracer provider.

    The provider comes from temporalio's ``create_tracer_provider``: span ids
    made inside workflows are deterministic and spans are not ended again when
    a worker replays a history, so a workflow run is one span however often it
    is replayed. Tracing interceptors read the global provider when a worker
    starts, so call this before creating workers.

    Args:
        endpoint: Base URL of the collector, as in ``OTEL_EXPORTER_OTLP_ENDPOINT``
            (``/v1/traces`` is appended).
        service_name: ``service.name`` of the spans, as in ``OTEL_SERVICE_NAME``.
        default_service_name: ``service.name`` when neither ``service_name`` nor
            ``OTEL_RESOURCE_ATTRIBUTES`` gives one (OpenTelemetry's own default,
            ``unknown_service``, says nothing).

    Returns:
        The provider; call its ``shutdown()`` before the process exits to flush spans.
    """
    # OTEL_RESOURCE_ATTRIBUTES and the other resource variables are read by Resource.create.
    from_environment = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    name = service_name or from_environment or default_service_name
    provider = create_tracer_provider(resource=Resource.create({SERVICE_NAME: name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    opentelemetry.trace.set_tracer_provider(provider)
    return provider
