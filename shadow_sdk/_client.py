"""connect(): a Temporal client configured from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import temporalio.client

from shadow_sdk._plugin import ShadowPlugin
from shadow_sdk._settings import ShadowSettings

logger = logging.getLogger("shadow_sdk.client")


async def connect(
    settings: ShadowSettings,
    *,
    plugins: Sequence[temporalio.client.Plugin] = (),
    **options: Any,
) -> temporalio.client.Client:
    """Connect to the Temporal service that ``settings`` describe.

    The client carries :meth:`ShadowPlugin.from_settings <shadow_sdk.ShadowPlugin.from_settings>`
    (encryption, tokens), and so does every worker built from it.

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
        plugins=[ShadowPlugin.from_settings(settings), *plugins],
        **options,
    )


@contextlib.asynccontextmanager
async def api_key_watch(
    client: temporalio.client.Client,
    settings: ShadowSettings,
    *,
    interval: float = 10.0,
) -> AsyncIterator[None]:
    """Keep ``client.api_key`` equal to the content of ``TEMPORAL_API_KEY_FILE``.

    A rotated key (a new secret mounted over the file) is used from the next
    call on, without restarting the process. Does nothing when the key does not
    come from a file.

    Args:
        client: The client whose key to keep current.
        settings: Names the key file.
        interval: Seconds between looks at the file.
    """
    if settings.temporal_api_key_file is None:
        yield
        return

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                key = settings.api_key()
            except OSError as error:
                logger.warning("cannot read TEMPORAL_API_KEY_FILE: %s", error)
                continue
            if key and key != client.api_key:
                client.api_key = key
                logger.info("API key reloaded from TEMPORAL_API_KEY_FILE")

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
