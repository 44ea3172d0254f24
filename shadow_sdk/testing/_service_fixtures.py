"""Fixtures that run a service as processes: its worker and its command line, on a dev server.

The plugin registers them with the asynchronous fixtures. They run the service named by
the ``shadow_service`` option of the pytest configuration (``python -m <it>``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pydantic
import pytest
import pytest_asyncio
import temporalio.client
import temporalio.testing

from shadow_sdk._plugin import ShadowPlugin
from shadow_sdk._settings import ShadowSettings
from shadow_sdk.testing._callers import connect_caller
from shadow_sdk.testing._credentials import Credentials
from shadow_sdk.testing._fixture_types import Cli, ConnectAs, EnvAs, StartWorker
from shadow_sdk.testing._fork_server import ForkServer
from shadow_sdk.testing._isolation import settings_variables
from shadow_sdk.testing._processes import (
    CommandResult,
    DevServer,
    WorkerProcess,
    free_port,
    run_command,
)


@pytest.fixture(scope="session")
def service_command(pytestconfig: pytest.Config) -> list[str]:
    """How to run the service: ``python -m <shadow_service>``."""
    module = pytestconfig.getini("shadow_service")
    if not module:
        msg = (
            "the service fixtures run `python -m <your package>`: name it with "
            'shadow_service = "<package>" in [tool.pytest.ini_options]'
        )
        raise pytest.UsageError(msg)
    return [sys.executable, "-m", str(module)]


@pytest.fixture(scope="session")
def credentials() -> Credentials:
    """Encryption keys and a token signing secret made for this test session only."""
    return Credentials.generate()


@pytest.fixture(scope="session")
def service_settings_env() -> dict[str, str]:
    """What the service's processes need besides the connection: keys, tokens.

    Empty here; a service that encrypts or authorizes overrides it in its
    ``conftest.py``, usually from :func:`credentials`.
    """
    return {}


@pytest.fixture(scope="session")
def temporal_dev_server() -> Iterator[DevServer]:
    """One dev server for the session's service processes, stopped at the end."""
    with DevServer() as server:
        yield server


@pytest.fixture(scope="session")
def service_env(
    temporal_dev_server: DevServer,
    service_settings_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The environment of the service's processes: the session's dev server and task queue.

    Nothing of the developer's Temporal configuration reaches them (the variables
    ``isolated_environment`` hides, and no Temporal profile).
    """
    hidden = settings_variables()
    home = tmp_path_factory.mktemp("service-home")
    return {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.upper().startswith("TEMPORAL_") and name.upper() not in hidden
        },
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        **service_settings_env,
        "TEMPORAL_ADDRESS": temporal_dev_server.address,
        "TEMPORAL_NAMESPACE": temporal_dev_server.namespace,
        "TEMPORAL_TASK_QUEUE": f"session-{uuid.uuid4().hex[:12]}",
        "METRICS_HOST": "127.0.0.1",
    }


@pytest.fixture(scope="session")
def service_fork_server(
    pytestconfig: pytest.Config, service_command: list[str], service_env: dict[str, str]
) -> Iterator[ForkServer | None]:
    """A fork server of the service: its worker and command line start without import time.

    Each run is still a process of its own; it only starts with the service's modules
    imported (see :class:`~shadow_sdk.testing.ForkServer`). ``None``, and every run a
    fresh ``python -m``, with ``shadow_service_fork = false`` in the pytest
    configuration, where the platform cannot fork, or when ``service_command`` was
    overridden with something other than ``python -m <package>``.
    """
    runs_module = len(service_command) == 3 and service_command[:2] == [sys.executable, "-m"]
    if not (pytestconfig.getini("shadow_service_fork") and runs_module and ForkServer.supported()):
        yield None
        return
    with ForkServer(service_command[-1], service_env) as server:
        yield server


@pytest.fixture(scope="session")
def worker(
    service_command: list[str],
    service_env: dict[str, str],
    service_fork_server: ForkServer | None,
) -> Iterator[WorkerProcess]:
    """The service's worker, shared by the session's tests, polling the session's task queue.

    Tests start workflows of their own on it (with business ids of their own). A test
    that stops a worker, reads its metrics or runs it with other settings uses
    :func:`start_worker` instead.
    """
    env = {**service_env, "METRICS_PORT": str(free_port())}
    command = [*service_command, "worker"]
    with WorkerProcess(command, env, fork_server=service_fork_server).start() as process:
        yield process


@pytest_asyncio.fixture
async def start_worker(
    service_command: list[str],
    service_env: dict[str, str],
    service_fork_server: ForkServer | None,
    task_queue: str,
) -> AsyncIterator[StartWorker]:
    """A way to start workers of the test's own.

    ``worker = await start_worker(REDIS_URL=...)``: each polls the test's task queue
    (``task_queue``) with ``service_env`` plus the given variables, serves its ops port
    on a port of its own, and is stopped with SIGTERM after the test. Give
    ``worker.env`` to :func:`cli` to talk to it.
    """
    started: list[WorkerProcess] = []

    async def start(**env: str) -> WorkerProcess:
        process = WorkerProcess(
            [*service_command, "worker"],
            {**service_env, "TEMPORAL_TASK_QUEUE": task_queue, **env},
            fork_server=service_fork_server,
        )
        started.append(process)
        return await asyncio.to_thread(process.start)

    try:
        yield start
    finally:
        await asyncio.gather(*(asyncio.to_thread(process.stop) for process in started))


@pytest.fixture
def cli(
    service_command: list[str],
    service_env: dict[str, str],
    service_fork_server: ForkServer | None,
) -> Cli:
    """The service's command line, run as a process.

    ``code, stdout, stderr = await cli("start", ...)``, in ``service_env`` (so it reaches
    the shared :func:`worker`) unless given ``env=``.
    """

    async def run(*args: str, env: dict[str, str] | None = None) -> CommandResult:
        command, environment = [*service_command, *args], service_env if env is None else env
        if service_fork_server is None or not service_fork_server.serves(command):
            return await run_command(command, env=environment)
        return CommandResult(*await service_fork_server.run(command, environment))

    return run


@pytest_asyncio.fixture
async def service_client(
    temporal_dev_server: DevServer, shadow_plugin: ShadowPlugin
) -> temporalio.client.Client:
    """A client of the dev server the service's processes run on, with ``shadow_plugin``.

    To look at what the worker and the command line did: a workflow's history, result or
    schedule.
    """
    return await temporalio.client.Client.connect(
        temporal_dev_server.address,
        namespace=temporal_dev_server.namespace,
        plugins=[shadow_plugin],
    )


@pytest.fixture
def env_as(service_env: dict[str, str], credentials: Credentials) -> EnvAs:
    """``service_env`` for another caller: ``env_as("victor", "viewer")`` carries its token."""

    def env(subject: str, *roles: str, base: dict[str, str] | None = None) -> dict[str, str]:
        token = credentials.token(subject, *roles)
        return {**(service_env if base is None else base), "AUTH_TOKEN": token}

    return env


@pytest.fixture
def connect_as(
    temporal_env: temporalio.testing.WorkflowEnvironment,
    settings: ShadowSettings,
    credentials: Credentials,
) -> ConnectAs:
    """Clients of other callers of the test's own server (``temporal_env``).

    ``viewer = await connect_as("victor", "viewer")``: the client encrypts as
    ``settings`` do and carries a token of the given roles. ``settings`` is the
    service's fixture (its ``conftest.py`` defines it); for a caller of the session's
    dev server, where the service's processes run, start the command line with
    ``env_as`` instead.
    """

    async def connect(subject: str, *roles: str) -> temporalio.client.Client:
        token = pydantic.SecretStr(credentials.token(subject, *roles))
        caller = settings.model_copy(update={"auth_token": token})
        return await connect_caller(temporal_env.client, ShadowPlugin.from_settings(caller))

    return connect
