"""The types of the service fixtures, to annotate a test's parameters with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

import temporalio.client

from shadow_sdk.testing._processes import CommandResult, WorkerProcess

Cli: TypeAlias = Callable[..., Awaitable[CommandResult]]
"""The ``cli`` fixture: ``await cli(*args, env=None)`` runs the command line."""
StartWorker: TypeAlias = Callable[..., Awaitable[WorkerProcess]]
"""The ``start_worker`` fixture: ``await start_worker(**env)`` starts a worker."""
EnvAs: TypeAlias = Callable[..., dict[str, str]]
"""The ``env_as`` fixture: ``env_as(subject, *roles, base=None)``, another caller's environment."""
ConnectAs: TypeAlias = Callable[..., Awaitable[temporalio.client.Client]]
"""The ``connect_as`` fixture: ``await connect_as(subject, *roles)``, another caller's client."""
