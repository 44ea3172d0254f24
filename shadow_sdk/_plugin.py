"""ShadowPlugin: the one place where shadow_sdk configures clients, workers and replayers."""

from __future__ import annotations

import dataclasses

import temporalio.contrib.pydantic
import temporalio.converter
import temporalio.plugin


class ShadowPlugin(temporalio.plugin.SimplePlugin):
    """Installs shadow_sdk's data converter on a client, a worker or a replayer.

    Give it to :meth:`temporalio.client.Client.connect` (as :func:`~shadow_sdk.connect`
    does) and every worker built from that client inherits it; give it to a
    :class:`temporalio.worker.Replayer` so that replays decode histories exactly
    as the workers wrote them. Because client, worker and replayer are all
    configured here, they cannot disagree.

    Payloads are converted by :mod:`temporalio.contrib.pydantic`, so workflow and
    activity arguments and results can be pydantic models. A payload converter
    chosen explicitly on the client is left alone.
    """

    def __init__(self) -> None:
        super().__init__("shadow_sdk.ShadowPlugin", data_converter=_with_pydantic_payloads)


def _with_pydantic_payloads(
    converter: temporalio.converter.DataConverter | None,
) -> temporalio.converter.DataConverter:
    converter = converter or temporalio.converter.DataConverter.default
    if converter.payload_converter_class is not temporalio.converter.DefaultPayloadConverter:
        return converter
    return dataclasses.replace(
        converter,
        payload_converter_class=temporalio.contrib.pydantic.PydanticPayloadConverter,
    )
