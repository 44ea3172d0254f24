"""Test support for services built on shadow_sdk: real Temporal servers, offline.

The pytest fixtures live in :mod:`shadow_sdk.testing.pytest_plugin`, which pytest
loads by itself once ``shadow-sdk[testing]`` is installed. What they build on is
here, for tests and tools that do not use pytest: Temporal servers, a service's
worker and command line as processes (or forked from a server that imported the
service once), its ``/metrics`` read as Prometheus reads it, throwaway keys and
tokens, Redis and PostgreSQL servers, and a clock that moves only when a test moves it.
"""

from shadow_sdk.testing._callers import connect_caller
from shadow_sdk.testing._clock import FakeClock
from shadow_sdk.testing._credentials import Credentials
from shadow_sdk.testing._environments import (
    TEMPORAL_CLI,
    TEMPORAL_TEST_SERVER,
    find_binary,
    start_dev_server,
    start_time_skipping,
)
from shadow_sdk.testing._fixture_types import Cli, ConnectAs, EnvAs, StartWorker
from shadow_sdk.testing._fork_server import ForkedProcess, ForkServer
from shadow_sdk.testing._ops import OpsClient
from shadow_sdk.testing._postgres import POSTGRESQL_PACKAGE, PostgresServer, find_postgres_bindir
from shadow_sdk.testing._processes import (
    BackgroundProcess,
    CommandResult,
    DevServer,
    ProcessExited,
    WorkerProcess,
    accepts_connections,
    free_port,
    run_command,
)
from shadow_sdk.testing._redis import REDIS_SERVER, RedisServer, find_redis_server
from shadow_sdk.testing._scrape import Scrape

__all__ = [
    "POSTGRESQL_PACKAGE",
    "REDIS_SERVER",
    "TEMPORAL_CLI",
    "TEMPORAL_TEST_SERVER",
    "BackgroundProcess",
    "Cli",
    "CommandResult",
    "ConnectAs",
    "Credentials",
    "DevServer",
    "EnvAs",
    "FakeClock",
    "ForkServer",
    "ForkedProcess",
    "OpsClient",
    "PostgresServer",
    "ProcessExited",
    "RedisServer",
    "Scrape",
    "StartWorker",
    "WorkerProcess",
    "accepts_connections",
    "connect_caller",
    "find_binary",
    "find_postgres_bindir",
    "find_redis_server",
    "free_port",
    "run_command",
    "start_dev_server",
    "start_time_skipping",
]
