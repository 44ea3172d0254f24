from __future__ import annotations

import pytest
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests first, each file's tests in their order.

    Spread over workers (``nox -s tests`` runs pytest-xdist, one file per worker at a
    time), the long files start early and the quick ones fill in at the end, instead of
    one worker finishing a long file while the others wait.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
