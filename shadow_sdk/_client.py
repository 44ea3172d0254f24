"""connect(): a Temporal client configured from settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import temporalio.client

from shadow_sdk._plugin import ShadowPlugin
from shadow_sdk._settings import ShadowSettings


async def connect(
    settings: ShadowSettings,
    *,
    plugins: Sequence[temporalio.client.Plugin] = (),
    **options: Any,
) -> temporalio.client.Client:
    """Connect to the Temporal service that ``settings`` describe.

    The client carries :class:`~shadow_sdk.ShadowPlugin`, and so does every
    worker built from it.

    Args:
        settings: Address, namespace, TLS and API key to connect with.
        plugins: Further plugins, applied after ShadowPlugin.
        **options: Other keyword arguments of
            :meth:`temporalio.client.Client.connect`, such as ``identity``.

    Returns:
        The connected client.
    """
    return await temporalio.client.Client.connect(
        **settings.client_connect_config(),
        plugins=[ShadowPlugin(), *plugins],
        **options,
    )
