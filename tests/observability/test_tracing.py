"""One trace from the client's start call through the workflow to each activity attempt."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import opentelemetry.trace
import pytest
from helpers.workflows import OutcomeWorkflow, flaky_step
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.client import Client
from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

from shadow_sdk import ShadowPlugin, ShadowSettings, ShadowWorker
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.observability import create_tracer_provider


@pytest.fixture(scope="session")
def session_exporter() -> InMemorySpanExporter:
    """The process's global tracer provider can be set once; it keeps spans in memory."""
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    opentelemetry.trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def spans(session_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    session_exporter.clear()
    yield session_exporter
    session_exporter.clear()


@pytest.fixture(
    params=[
        ShadowPlugin(tracing=True),
        ShadowPlugin(tracing=True, codec=EncryptionCodec(KeyRing({"k": bytes(32)}))),
    ],
    ids=["plain", "encrypted-headers"],
)
def shadow_plugin(request: pytest.FixtureRequest) -> ShadowPlugin:
    """With encryption, the trace context travels in encrypted headers."""
    plugin: ShadowPlugin = request.param
    return plugin


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, [span.name for span in spans]
    return matching[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


async def test_links_client_workflow_and_activity_attempts(
    spans: InMemorySpanExporter, temporal_client: Client, task_queue: str
) -> None:
    """Without a workflow cache the run is replayed on every task, yet it is one span."""
    settings = ShadowSettings(temporal_task_queue=task_queue, worker_max_cached_workflows=0)
    async with ShadowWorker(
        temporal_client, settings, workflows=[OutcomeWorkflow], activities=[flaky_step]
    ):
        await temporal_client.execute_workflow(
            OutcomeWorkflow.run, "complete", id=f"traced-{uuid.uuid4()}", task_queue=task_queue
        )

    finished = list(spans.get_finished_spans())
    start = only(finished, "StartWorkflow:OutcomeWorkflow")
    run = only(finished, "RunWorkflow:OutcomeWorkflow")
    schedule = only(finished, "StartActivity:flaky_step")
    attempts = sorted(
        (span for span in finished if span.name == "RunActivity:flaky_step"),
        key=lambda span: span.start_time or 0,
    )
    assert start.context is not None
    assert {span.context.trace_id for span in finished if span.context} == {start.context.trace_id}
    assert parent_of(start) is None
    assert parent_of(run) == start.context.span_id
    assert run.context is not None
    assert parent_of(schedule) == run.context.span_id
    assert schedule.context is not None
    assert [parent_of(attempt) for attempt in attempts] == [schedule.context.span_id] * 2
    assert [attempt.status.status_code for attempt in attempts] == [
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_the_provider_makes_each_tracer_once_and_spans_as_temporalio_does() -> None:
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    tracer = provider.get_tracer("interceptor")
    assert isinstance(provider, ReplaySafeTracerProvider)
    assert provider.get_tracer("interceptor") is tracer
    assert provider.get_tracer("interceptor", "2.0") is not tracer
    assert provider.get_tracer("other") is not tracer
    with_attributes = provider.get_tracer("interceptor", attributes={"team": "payments"})
    assert with_attributes is not tracer
    for each in (tracer, with_attributes):
        with each.start_as_current_span("step"):
            pass
    assert [
        (span.name, span.instrumentation_scope.name) for span in exporter.get_finished_spans()
    ] == [
        ("step", "interceptor"),
        ("step", "interceptor"),
    ]
    assert exporter.get_finished_spans()[1].instrumentation_scope.attributes == {"team": "payments"}


def test_without_tracing_opentelemetry_is_not_even_imported() -> None:
    """Tracing off costs nothing: no interceptor, no import."""
    result = run_python(
        "import sys\n"
        "from shadow_sdk import ShadowPlugin, ShadowSettings\n"
        "from shadow_sdk.observability import Observability\n"
        "settings = ShadowSettings()\n"
        "ShadowPlugin.from_settings(settings)\n"
        "Observability.install(settings)\n"
        "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_tracing_without_opentelemetry_installed_names_the_setting_and_extra() -> None:
    result = run_python(
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the extra were not installed\n"
        "from shadow_sdk import SettingsError, ShadowSettings\n"
        "from shadow_sdk.observability import Observability\n"
        "settings = ShadowSettings(otel_exporter_otlp_endpoint='http://127.0.0.1:4318')\n"
        "try:\n"
        "    Observability.install(settings)\n"
        "except SettingsError as error:\n"
        "    print(error)\n"
    )

    assert result.returncode == 0, result.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT: tracing needs 'opentelemetry" in result.stdout
    assert "install the 'shadow-sdk[tracing]' extra" in result.stdout
