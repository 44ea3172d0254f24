from __future__ import annotations

from shadow_sdk.testing import find_redis_server

# Tests of the pytest plugin run inner pytest sessions.
pytest_plugins = ["pytester"]


def pytest_report_header() -> str:
    return f"redis-server: {find_redis_server()}"
