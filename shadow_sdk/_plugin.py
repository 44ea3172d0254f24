"""ShadowPlugin: the one place where shadow_sdk configures clients, workers and replayers."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import temporalio.client
import temporalio.common
import temporalio.contrib.pydantic
import temporalio.converter
import temporalio.plugin
import temporalio.worker
import temporalio.worker.workflow_sandbox

from shadow_sdk.auth import AuthInterceptor

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

logger = logging.getLogger("shadow_sdk.plugin")

# Imported by token verification, which runs in workflow interceptors.
_AUTH_PASSTHROUGH = ("jwt", "cryptography")


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
    * with ``auth``: the :class:`~shadow_sdk.auth.AuthInterceptor`, with the
      modules token verification needs passed through the workflow sandbox.

    Args:
        codec: Payload codec, usually an encryption codec.
        encode_failures: Encode failure messages and stack traces with ``codec``.
        auth: Authentication and authorization interceptor.
    """

    def __init__(
        self,
        *,
        codec: temporalio.converter.PayloadCodec | None = None,
        encode_failures: bool = True,
        auth: AuthInterceptor | None = None,
    ) -> None:
        self.codec = codec
        self.encode_failures = encode_failures and codec is not None
        self.auth = auth
        super().__init__(
            "shadow_sdk.ShadowPlugin",
            data_converter=self._data_converter,
            interceptors=[auth] if auth else None,
            workflow_runner=_with_auth_passthrough if auth else None,
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
        return cls(codec=codec, encode_failures=settings.codec_encode_failures, auth=auth)

    def configure_client(
        self, config: temporalio.client.ClientConfig
    ) -> temporalio.client.ClientConfig:
        """See base class."""
        config = super().configure_client(config)
        if self.codec is not None:
            config["header_codec_behavior"] = temporalio.common.HeaderCodecBehavior.CODEC
        return config

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
                payload_converter_class=temporalio.contrib.pydantic.PydanticPayloadConverter,
            )
        if self.codec is not None:
            converter = dataclasses.replace(converter, payload_codec=self.codec)
        if self.encode_failures:
            converter = dataclasses.replace(
                converter,
                failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
            )
        return converter


def _with_auth_passthrough(
    runner: temporalio.worker.WorkflowRunner | None,
) -> temporalio.worker.WorkflowRunner:
    runner = runner or temporalio.worker.workflow_sandbox.SandboxedWorkflowRunner()
    if isinstance(runner, temporalio.worker.workflow_sandbox.SandboxedWorkflowRunner):
        restrictions = runner.restrictions.with_passthrough_modules(*_AUTH_PASSTHROUGH)
        return dataclasses.replace(runner, restrictions=restrictions)
    return runner
