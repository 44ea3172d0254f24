"""ShadowPlugin: the one place where shadow_sdk configures clients, workers and replayers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import temporalio.client
import temporalio.common
import temporalio.converter
import temporalio.plugin
import temporalio.runtime
import temporalio.service
import temporalio.worker
import temporalio.worker.workflow_sandbox
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from shadow_sdk._payload_converter import PydanticPayloadConverter
from shadow_sdk._runner_wrappers import ContextCachingRunner
from shadow_sdk._unversioned import UnversionedRunner
from shadow_sdk.auth import AuthInterceptor
from shadow_sdk.codec import EncryptionCodec
from shadow_sdk.observability import MetricsInterceptor
from shadow_sdk.observability._tracing import require_tracing

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

logger = logging.getLogger("shadow_sdk.plugin")

# The third-party libraries shadow_sdk imports, passed through the workflow sandbox.
# Token verification, which runs in workflow interceptors, uses jwt and cryptography.
# The others let a workflow module that imports shadow_sdk without passing it through
# load at all (prometheus_client subclasses urllib's handlers at import time, which the
# sandbox refuses); such a module still re-imports shadow_sdk for every workflow run,
# which is why workflow modules pass shadow_sdk through (docs/plugin.md).
_PASSTHROUGH = (
    "cryptography",
    "dotenv",
    "jwt",
    "opentelemetry",
    "prometheus_client",
    "pydantic_settings",
    "redis",
)


class ShadowPlugin(temporalio.plugin.SimplePlugin):
    """Installs shadow_sdk's data converter and interceptors on clients, workers and replayers.

    Give it to :meth:`temporalio.client.Client.connect` (as :func:`~shadow_sdk.connect`
    does) and every worker built from that client inherits it; give it to a
    :class:`temporalio.worker.Replayer` so that replays decode histories and
    authorize calls exactly as the workers did. Because client, worker and
    replayer are all configured here, they cannot disagree.

    What it installs:

    * payloads converted by :mod:`temporalio.contrib.pydantic`, so arguments and
      results can be pydantic models (a payload converter chosen explicitly on
      the client is left alone);
    * with ``codec``: that payload codec, applied to headers too
      (``HeaderCodecBehavior.CODEC``) so that tokens are never stored in plain
      text, and with ``encode_failures`` to failure messages and stack traces;
    * with ``tracing``: temporalio's OpenTelemetry interceptor, which traces
      from the client's call through the workflow run to each activity attempt,
      with the trace context carried in Temporal headers;
    * with ``auth``: the :class:`~shadow_sdk.auth.AuthInterceptor`;
    * the :class:`~shadow_sdk.observability.MetricsInterceptor` on workers
      (``metrics=False`` leaves it out);
    * the third-party libraries shadow_sdk imports, passed through the workflow
      sandbox. shadow_sdk itself is not: a workflow module imports what it uses
      of it (:class:`~shadow_sdk.resilience.Saga`, the activity presets) inside
      ``workflow.unsafe.imports_passed_through()``.

    They wrap each other in that order: a denied call still shows in its trace,
    and only authorized work counts in the workflow and activity metrics (denials
    count in ``shadow_auth_denials_total``).

    Args:
        codec: Payload codec, usually an encryption codec.
        encode_failures: Encode failure messages and stack traces with ``codec``.
        auth: Authentication and authorization interceptor.
        metrics: Count workflows and activities.
        tracing: Record OpenTelemetry spans with the global tracer provider, which
            must be replay-safe: made by
            :func:`shadow_sdk.observability.create_tracer_provider`, as
            :class:`~shadow_sdk.observability.Observability` sets it up. Needs the
            ``shadow-sdk[tracing]`` extra.
    """

    def __init__(
        self,
        *,
        codec: temporalio.converter.PayloadCodec | None = None,
        encode_failures: bool = True,
        auth: AuthInterceptor | None = None,
        metrics: bool = True,
        tracing: bool = False,
    ) -> None:
        self.codec = codec
        self.encode_failures = encode_failures and codec is not None
        self.auth = auth
        interceptors: list[temporalio.client.Interceptor | temporalio.worker.Interceptor] = []
        if tracing:
            # The interceptor of temporalio's OpenTelemetryPlugin rather than the older
            # TracingInterceptor: it parents activities under the workflow run's span
            # and keeps spans replay-safe (docs/operations.md says more).
            otel = require_tracing()
            interceptors.append(otel.OpenTelemetryInterceptor(add_temporal_spans=True))
        if auth is not None:
            interceptors.append(auth)
        if metrics:
            interceptors.append(MetricsInterceptor())
        super().__init__(
            "shadow_sdk.ShadowPlugin",
            data_converter=self._data_converter,
            interceptors=interceptors or None,
            workflow_runner=_with_passthrough(*_PASSTHROUGH),
        )

    @classmethod
    def from_settings(cls, settings: ShadowSettings) -> ShadowPlugin:
        """The plugin that ``settings`` describe: encryption keys, compression, tokens, policy."""
        codec = settings.payload_codec()
        token = settings.auth_token_source()
        if token is not None and codec is None:
            logger.warning(
                "AUTH_TOKEN is set but payloads are not encrypted: tokens travel and are "
                "stored in workflow history in plain text; set CODEC_KEYS to encrypt them"
            )
        authorizer = settings.authorizer()
        auth = (
            AuthInterceptor(token=token, authorizer=authorizer)
            if token is not None or authorizer is not None
            else None
        )
        return cls(
            codec=codec,
            encode_failures=settings.codec_encode_failures,
            auth=auth,
            tracing=settings.otel_exporter_otlp_endpoint is not None,
        )

    def configure_client(
        self, config: temporalio.client.ClientConfig
    ) -> temporalio.client.ClientConfig:
        """See base class."""
        config = super().configure_client(config)
        if self.codec is not None:
            config["header_codec_behavior"] = temporalio.common.HeaderCodecBehavior.CODEC
        return config

    def configure_worker(
        self, config: temporalio.worker.WorkerConfig
    ) -> temporalio.worker.WorkerConfig:
        """See base class; an unversioned worker leaves workflows' versioning behaviors out.

        The server refuses a workflow task completed with a versioning behavior by a
        worker that is not versioned, so without this a workflow that declares one
        could never run on an unversioned worker (``shadow_sdk._unversioned`` says more).
        Every worker's workflow instances answer the data converter's context questions
        once per command (``shadow_sdk._runner_wrappers``).
        """
        config = super().configure_worker(config)
        deployment = config.get("deployment_config")
        versioned = deployment is not None and deployment.use_worker_versioning

        def wrapped(runner: temporalio.worker.WorkflowRunner) -> temporalio.worker.WorkflowRunner:
            cached = ContextCachingRunner.around(runner)
            return cached if versioned else UnversionedRunner.around(cached)

        config["workflow_runner"] = wrapped(
            config.get("workflow_runner") or SandboxedWorkflowRunner()
        )
        config["unsandboxed_workflow_runner"] = wrapped(
            config.get("unsandboxed_workflow_runner") or UnsandboxedWorkflowRunner()
        )
        return config

    async def connect_service_client(
        self,
        config: temporalio.service.ConnectConfig,
        next: Callable[
            [temporalio.service.ConnectConfig], Awaitable[temporalio.service.ServiceClient]
        ],
    ) -> temporalio.service.ServiceClient:
        """See base class; codec errors are counted on the client's runtime."""
        if isinstance(self.codec, EncryptionCodec) and self.codec.metric_meter is None:
            runtime = config.runtime or temporalio.runtime.Runtime.default()
            self.codec.metric_meter = runtime.metric_meter
        return await super().connect_service_client(config, next)

    def configure_replayer(
        self, config: temporalio.worker.ReplayerConfig
    ) -> temporalio.worker.ReplayerConfig:
        """See base class."""
        config = super().configure_replayer(config)
        if self.codec is not None:
            config["header_codec_behavior"] = temporalio.common.HeaderCodecBehavior.CODEC
        return config

    def _data_converter(
        self, converter: temporalio.converter.DataConverter | None
    ) -> temporalio.converter.DataConverter:
        converter = converter or temporalio.converter.DataConverter.default
        if converter.payload_converter_class is temporalio.converter.DefaultPayloadConverter:
            converter = dataclasses.replace(
                converter,
                payload_converter_class=PydanticPayloadConverter,
            )
        if self.codec is not None:
            converter = dataclasses.replace(converter, payload_codec=self.codec)
        if self.encode_failures:
            converter = dataclasses.replace(
                converter,
                failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
            )
        return converter


def _with_passthrough(
    *modules: str,
) -> Callable[[temporalio.worker.WorkflowRunner | None], temporalio.worker.WorkflowRunner]:
    def configure(
        runner: temporalio.worker.WorkflowRunner | None,
    ) -> temporalio.worker.WorkflowRunner:
        runner = runner or temporalio.worker.workflow_sandbox.SandboxedWorkflowRunner()
        if isinstance(runner, temporalio.worker.workflow_sandbox.SandboxedWorkflowRunner):
            restrictions = runner.restrictions.with_passthrough_modules(*modules)
            return dataclasses.replace(runner, restrictions=restrictions)
        return runner

    return configure
