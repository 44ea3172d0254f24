from __future__ import annotations

from helpers.tls_terminator import find_nginx

from shadow_sdk.testing import find_redis_server

# Tests of the pytest plugin run inner pytest sessions.
pytest_plugins = ["pytester"]


def pytest_report_header() -> list[str]:
    nginx = find_nginx()
    return [
        f"redis-server: {find_redis_server()}",
        f"nginx: {nginx}" if nginx else "nginx: not found, the TLS tests are skipped",
    ]
