"""Helpers the kit's tests share: test workflows, repositories, tools and servers.

Processes, ports and ops servers come from the SDK's harness, ``shadow_sdk.testing``,
which services test with too; what is here is the kit's own.

``worker_process.py`` and ``traced_client.py`` also run as scripts, in processes of
their own; they import their siblings by module name, which running a script allows.
"""
