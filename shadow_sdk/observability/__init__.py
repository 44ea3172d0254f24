"""Observability of worker processes: metrics, probes, logs and traces.

:class:`Observability` sets up a process from its settings: logging (text or
JSON, with workflow and activity context), a Temporal runtime whose metrics, the
SDK core's and shadow_sdk's, reach one Prometheus registry, and OpenTelemetry
tracing when an OTLP endpoint is configured. :class:`OpsServer` exposes the
registry and the worker's probes; :class:`MetricsInterceptor` counts workflows
and activities; :class:`PollHealth` tells from the SDK core's metrics whether a
worker's polls reach Temporal. :func:`create_tracer_provider` (with the
``shadow-sdk[tracing]`` extra) makes the replay-safe tracer provider that
tracing needs, for processes that send spans elsewhere than OTLP.
"""

import typing

from shadow_sdk.observability._interceptor import MetricsInterceptor
from shadow_sdk.observability._logging import JsonFormatter, TextFormatter, configure_logging
from shadow_sdk.observability._ops_server import OpsServer, Probe, WorkerState
from shadow_sdk.observability._polls import PollHealth
from shadow_sdk.observability._prometheus import TemporalMetricsCollector, registry_for
from shadow_sdk.observability._setup import Observability, create_runtime

if typing.TYPE_CHECKING:
    from shadow_sdk.observability._otel import create_tracer_provider

__all__ = [
    "JsonFormatter",
    "MetricsInterceptor",
    "Observability",
    "OpsServer",
    "PollHealth",
    "Probe",
    "TemporalMetricsCollector",
    "TextFormatter",
    "WorkerState",
    "configure_logging",
    "create_runtime",
    "create_tracer_provider",
    "registry_for",
]


def __getattr__(name: str) -> object:
    # OpenTelemetry is an optional extra: it is imported when its function is asked
    # for, and its absence named then.
    if name == "create_tracer_provider":
        from shadow_sdk.observability._tracing import require_tracing  # noqa: PLC0415

        return require_tracing().create_tracer_provider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
