"""The plugin's async fixtures; registered only when pytest-asyncio is active."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import temporalio.client
import temporalio.testing

from shadow_sdk._plugin import ShadowPlugin
from shadow_sdk.testing._environments import start_dev_server, start_time_skipping
from shadow_sdk.testing.pytest_plugin import DEV_SERVER, TIME_SKIPPING


@pytest.fixture
def shadow_plugin() -> ShadowPlugin:
    """The plugin the environments' clients carry; override it to test with encryption or auth.

    For example, in a service's ``conftest.py``::

        @pytest.fixture
        def shadow_plugin(settings):
            return ShadowPlugin.from_settings(settings)
    """
    return ShadowPlugin()


@pytest_asyncio.fixture
async def time_skipping_env(
    shadow_plugin: ShadowPlugin,
) -> AsyncIterator[temporalio.testing.WorkflowEnvironment]:
    """A time-skipping test server of this test's own: timers fire as soon as nothing else runs."""
    async with await start_time_skipping(plugin=shadow_plugin) as env:
        yield env


@pytest_asyncio.fixture
async def dev_server_env(
    shadow_plugin: ShadowPlugin,
) -> AsyncIterator[temporalio.testing.WorkflowEnvironment]:
    """A dev server of this test's own: real time, schedules and visibility."""
    async with await start_dev_server(plugin=shadow_plugin) as env:
        yield env


@pytest_asyncio.fixture
async def temporal_env(
    request: pytest.FixtureRequest, shadow_plugin: ShadowPlugin
) -> AsyncIterator[temporalio.testing.WorkflowEnvironment]:
    """The environment chosen by ``--temporal-environment`` (time-skipping by default)."""
    choice = request.config.getoption("temporal_environment")
    if choice == TIME_SKIPPING:
        async with await start_time_skipping(plugin=shadow_plugin) as env:
            yield env
    elif choice == DEV_SERVER:
        async with await start_dev_server(plugin=shadow_plugin) as env:
            yield env
    else:
        client = await temporalio.client.Client.connect(choice, plugins=[shadow_plugin])
        yield temporalio.testing.WorkflowEnvironment.from_client(client)


@pytest.fixture
def temporal_client(
    temporal_env: temporalio.testing.WorkflowEnvironment,
) -> temporalio.client.Client:
    """The client of :func:`temporal_env`, with ShadowPlugin installed."""
    return temporal_env.client
