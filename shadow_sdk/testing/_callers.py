"""Other callers of a test's Temporal server: clients with plugins, and tokens, of their own."""

from __future__ import annotations

import temporalio.client


async def connect_caller(
    client: temporalio.client.Client, *plugins: temporalio.client.Plugin
) -> temporalio.client.Client:
    """Connect another caller to the server and namespace that ``client`` talks to.

    The caller carries ``plugins`` and none of ``client``'s: usually a
    :class:`~shadow_sdk.ShadowPlugin` with the caller's token and the keys it
    encrypts with. With no plugin it reads payloads as the server stores them.
    For example, a viewer of the test's own server::

        plugin = ShadowPlugin(codec=codec, auth=AuthInterceptor(token=viewer_token))
        viewer = await connect_caller(temporal_client, plugin)

    It reaches the server as ``client`` does (its address, TLS and API key), and
    runs on temporalio's default runtime.

    Args:
        client: A client of the server, such as ``temporal_env.client``.
        *plugins: The caller's client plugins.

    Returns:
        The caller's client.
    """
    config = client.service_client.config
    return await temporalio.client.Client.connect(
        config.target_host,
        namespace=client.namespace,
        api_key=config.api_key,
        tls=config.tls,
        plugins=plugins,
    )
