"""Tracing: OpenTelemetry spans from client to workflow to activity, exported over OTLP.

OpenTelemetry is an optional dependency (the ``shadow-sdk[tracing]`` extra), so
this module is imported only by processes that trace; :func:`require_tracing`
turns its absence into a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
from types import ModuleType
from typing import Any

TRACING_EXTRA = "shadow-sdk[tracing]"

SPAN_FLUSH_TIMEOUT = 3.0
"""Seconds a process waits at exit for its buffered spans to reach the collector."""

logger = logging.getLogger("shadow_sdk.tracing")


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


async def shut_down_tracing(provider: Any) -> bool:
    """Shut ``provider`` down, exporting its buffered spans, for ``SPAN_FLUSH_TIMEOUT`` at most.

    OpenTelemetry's own shutdown waits up to 30 s for the batch processor,
    whose exports each retry for up to 10 s: a collector that is down or does
    not answer kept a drained worker alive 15 to 20 s more, past
    ``WORKER_SHUTDOWN_TIMEOUT``. Past the timeout the spans are given up with a
    warning and the shutdown goes on in a daemon thread, which does not keep
    the process alive.

    Args:
        provider: The tracer provider ``configure_tracing`` returned.

    Returns:
        Whether the shutdown finished in time.
    """
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()

    def shut_down() -> None:
        try:
            provider.shutdown()
        finally:
            with contextlib.suppress(RuntimeError):  # The loop may be closed by now.
                loop.call_soon_threadsafe(finished.set)

    # Not asyncio.to_thread: the interpreter joins executor threads when it exits.
    threading.Thread(target=shut_down, name="shadow-span-flush", daemon=True).start()
    try:
        await asyncio.wait_for(finished.wait(), SPAN_FLUSH_TIMEOUT)
    except TimeoutError:
        logger.warning(
            "spans not exported within %g s of shutdown, dropped: "
            "is the collector at OTEL_EXPORTER_OTLP_ENDPOINT reachable?",
            SPAN_FLUSH_TIMEOUT,
        )
        return False
    return True
