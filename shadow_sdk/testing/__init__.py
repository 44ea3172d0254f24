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

__all__ = [
    "TEMPORAL_CLI",
    "TEMPORAL_TEST_SERVER",
    "find_binary",
    "start_dev_server",
    "start_time_skipping",
]
