"""The OpenTelemetry side of tracing, imported only when tracing is on."""

from __future__ import annotations

from typing import Any

import opentelemetry.trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer
from opentelemetry.util.types import Attributes
from temporalio.contrib.opentelemetry import (
    OpenTelemetryInterceptor,
    ReplaySafeTracerProvider,
)
from temporalio.contrib.opentelemetry import (
    create_tracer_provider as create_replay_safe_tracer_provider,
)

__all__ = ["OpenTelemetryInterceptor", "configure_tracing", "create_tracer_provider"]


class _TracerCachingProvider(ReplaySafeTracerProvider):
    """A replay-safe tracer provider that makes each tracer once.

    temporalio's tracing interceptor asks the global provider for its tracer on
    every call it traces, several times per workflow, and OpenTelemetry's
    ``get_tracer`` builds an instrumentation scope and registers a warnings
    filter each time: 20 us a call, about as much as half a span. The tracers
    it returns are stateless wrappers of the SDK's tracers, which the SDK caches
    by scope already, so one per scope serves every caller.
    """

    def __init__(self, provider: ReplaySafeTracerProvider) -> None:
        # temporalio keeps the wrapped SDK provider private; this wraps the same one.
        super().__init__(provider._tracer_provider, provider.id_generator())
        self._tracers: dict[tuple[str, str | None, str | None], Tracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> Tracer:
        """See base class; tracers without attributes are made once per scope."""
        if attributes:
            return super().get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        scope = (instrumenting_module_name, instrumenting_library_version, schema_url)
        tracer = self._tracers.get(scope)
        if tracer is None:
            tracer = self._tracers.setdefault(scope, super().get_tracer(*scope))
        return tracer


def create_tracer_provider(**options: Any) -> ReplaySafeTracerProvider:
    """Make a replay-safe tracer provider, as temporalio does, that makes each tracer once.

    Takes the options of :func:`temporalio.contrib.opentelemetry.create_tracer_provider`
    (``resource``, ``sampler``, ...) and returns a provider that
    :class:`~temporalio.contrib.opentelemetry.OpenTelemetryInterceptor` accepts as
    the global one. Use it where spans go elsewhere than OTLP (a test's
    in-memory exporter, a benchmark); :func:`configure_tracing` uses it too.
    """
    return _TracerCachingProvider(create_replay_safe_tracer_provider(**options))


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
