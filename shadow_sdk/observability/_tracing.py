"""Tracing: OpenTelemetry spans from client to workflow to activity, exported over OTLP.

OpenTelemetry is an optional dependency (the ``shadow-sdk[tracing]`` extra), so
this module is imported only by processes that trace; :func:`require_tracing`
turns its absence into a clear error.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TRACING_EXTRA = "shadow-sdk[tracing]"


def require_tracing() -> ModuleType:
    """Import :mod:`shadow_sdk.observability._otel`, or say which extra is missing.

    Raises:
        ImportError: OpenTelemetry is not installed; the message names the extra.
    """
    try:
        return importlib.import_module("shadow_sdk.observability._otel")
    except ModuleNotFoundError as error:
        raise ImportError(
            f"tracing needs {error.name!r}: install the {TRACING_EXTRA!r} extra"
        ) from error
