"""A real OTLP/HTTP trace receiver for the tests, on a free loopback port.

It accepts what a collector accepts on ``POST /v1/traces`` (binary protobuf, optionally
gzip-compressed), decodes each export request with the OpenTelemetry protobuf definitions
(PyPI ``opentelemetry-proto``), and answers as the OTLP specification says, so that
exporters see a collector, not a stub.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

PROTOBUF = "application/x-protobuf"
DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
}


def value_of(value: AnyValue) -> Any:
    """The Python value of an OTLP attribute value (the scalar kinds)."""
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def attributes_of(attributes: Iterator[KeyValue] | Any) -> dict[str, Any]:
    return {attribute.key: value_of(attribute.value) for attribute in attributes}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it, with the resource and scope it came with."""

    span: Span
    resource: dict[str, Any]
    scope: str

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes_of(self.span.attributes)


class OTLPReceiver(ThreadingHTTPServer):
    """An OTLP/HTTP receiver for traces, serving from a thread of its own."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="otlp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket: the port then refuses connections."""
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(timeout=10)
        self.server_close()

    @property
    def endpoint(self) -> str:
        """The base URL to give as ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, request: ExportTraceServiceRequest, content_type: str) -> None:
        with self._lock:
            self.requests.append(request)
            self.content_types.append(content_type)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        with self._lock:
            requests = list(self.requests)
        return [
            ReceivedSpan(span, attributes_of(resource_spans.resource.attributes), scope.scope.name)
            for request in requests
            for resource_spans in request.resource_spans
            for scope in resource_spans.scope_spans
            for span in scope.spans
        ]


class _Handler(BaseHTTPRequestHandler):
    server: OTLPReceiver

    def do_POST(self) -> None:
        if self.path != "/v1/traces":
            self._answer(HTTPStatus.NOT_FOUND)
            return
        content_type = self.headers.get("Content-Type", "")
        if content_type != PROTOBUF:
            self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding")
        try:
            if encoding:
                body = DECOMPRESS[encoding](body)
            request = ExportTraceServiceRequest.FromString(body)
        except (KeyError, OSError, zlib.error, DecodeError):
            self._answer(HTTPStatus.BAD_REQUEST)
            return
        self.server.record(request, content_type)
        self._answer(HTTPStatus.OK, ExportTraceServiceResponse().SerializeToString())

    def _answer(self, status: HTTPStatus, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what was received, not on access logs."""


@contextmanager
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """Run a receiver until the block ends (or its :meth:`~OTLPReceiver.stop`); yield it."""
    receiver = OTLPReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
