from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import find_redis_server, redis_server
from tls_terminator import find_nginx

# Tests of the pytest plugin run inner pytest sessions.
pytest_plugins = ["pytester"]


def pytest_report_header() -> list[str]:
    nginx = find_nginx()
    return [
        f"redis-server: {find_redis_server()}",
        f"nginx: {nginx}" if nginx else "nginx: not found, the TLS tests are skipped",
    ]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server shared by the test session; each test uses keys of its own."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
