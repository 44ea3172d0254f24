"""Test support for services built on shadow_sdk: real Temporal servers, offline.

The pytest fixtures live in :mod:`shadow_sdk.testing.pytest_plugin`, which pytest
loads by itself once ``shadow-sdk[testing]`` is installed. The functions here
serve tests and tools that do not use pytest.
"""

from shadow_sdk.testing._environments import (
    TEMPORAL_CLI,
    TEMPORAL_TEST_SERVER,
    find_binary,
    start_dev_server,
    start_time_skipping,
)
from shadow_sdk.testing._redis import REDIS_SERVER, RedisServer, find_redis_server

__all__ = [
    "REDIS_SERVER",
    "TEMPORAL_CLI",
    "TEMPORAL_TEST_SERVER",
    "RedisServer",
    "find_binary",
    "find_redis_server",
    "start_dev_server",
    "start_time_skipping",
]
