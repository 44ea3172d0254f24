"""Helpers the kit's tests share: test workflows, repositories, servers and probes.

``worker_process.py`` and ``traced_client.py`` also run as scripts, in processes of
their own; they import their siblings by module name, which running a script allows.
"""
