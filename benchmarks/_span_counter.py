"""A span exporter that counts spans by name and keeps nothing else.

The worker benchmark checks afterwards that every workflow and activity ran in a
span. Keeping the spans for that (OpenTelemetry's in-memory exporter) would put a
few MiB of finished spans into the measured process that an exporting worker frees
once they are sent; counting them keeps the process's memory as production's.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class SpanCounter(SpanExporter):
    """Counts the spans exported to it, by name."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count ``spans``; the batch processor calls this from its own thread."""
        with self._lock:
            self._counts.update(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def count(self, name: str) -> int:
        """How many spans named ``name`` were exported."""
        with self._lock:
            return self._counts[name]
