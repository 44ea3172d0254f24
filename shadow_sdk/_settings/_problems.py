"""Problems with settings, one line each naming the variable, and never a secret value."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import get_args, get_origin

import pydantic
import pydantic_core
import pydantic_settings
from pydantic import SecretBytes, SecretStr

from shadow_sdk._exceptions import SettingsError

LEGACY_VARIABLES = {
    "JWT_SECRET": "set AUTH_HS256_SECRET instead (or AUTH_PUBLIC_KEY_PATH or "
    "AUTH_JWKS_PATH for tokens signed with a key pair)",
    "ENCRYPTION_KEY": "set CODEC_KEYS instead, a JSON object of key id to base64 AES-256 "
    "key (`shadow keygen` makes one), or CODEC_KEYS_DIR",
    "WORKER_CONCURRENCY": "set WORKER_MAX_CONCURRENT_ACTIVITIES and "
    "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS instead",
    "MAX_CACHED_WORKFLOWS": "set WORKER_MAX_CACHED_WORKFLOWS instead",
    "JAEGER_ENDPOINT": "set OTEL_EXPORTER_OTLP_ENDPOINT instead (OTLP over HTTP, for "
    "example http://jaeger:4318)",
    "DATABASE_URL": "Temporal keeps the workflows' state: remove it, or declare a "
    "`database_url` field in the service's settings if it has a database of its own",
}
"""Variables of the system this kit replaces, and what to do instead.

A settings class that declares a field of the same name reads the variable as its
own; otherwise it is refused, so that a process never runs without the encryption
or authorization its environment seems to ask for.
"""


def legacy_problems(settings_cls: type[pydantic_settings.BaseSettings]) -> list[str]:
    """The variables of the replaced system that are set but that no field reads."""
    names = {name.upper() for name in os.environ}
    env_file = settings_cls.model_config.get("env_file")
    if env_file is not None:
        import dotenv  # noqa: PLC0415  pydantic-settings' own dependency, for dotenv files.

        files = [env_file] if isinstance(env_file, (str, Path)) else list(env_file)
        for file in files:
            if Path(file).is_file():
                names |= {name.upper() for name in dotenv.dotenv_values(file)}
    return [
        f"{name}: a variable of the system this kit replaces, which this service does not "
        f"read; {advice}"
        for name, advice in LEGACY_VARIABLES.items()
        if name in names and name.lower() not in settings_cls.model_fields
    ]


def problems_building(*builds: Callable[[], object]) -> list[str]:
    """Call each of ``builds``; the problems of those that raise :class:`~shadow_sdk.SettingsError`.

    A process calls the methods of its settings that build what it needs (keys,
    policy, authorizer) once, before anything else, to report every problem at
    once; a problem that two of them share is listed once.
    """
    problems: list[str] = []
    for build in builds:
        try:
            build()
        except SettingsError as error:
            problems += [problem for problem in error.problems if problem not in problems]
    return problems


def describe(
    settings_cls: type[pydantic_settings.BaseSettings], problem: pydantic_core.ErrorDetails
) -> str:
    """One line for one pydantic error: the variable, the value unless secret, the reason."""
    location = [str(part) for part in problem["loc"]]
    message = problem["msg"].removeprefix("Value error, ")
    if not location:
        return message
    variable = location[0].upper()
    field = settings_cls.model_fields.get(location[0].lower())
    value = problem.get("input")
    if (
        (field is not None and _is_secret(field.annotation))
        or value is None
        or isinstance(value, dict)
        or problem["type"] == "missing"
    ):
        return f"{variable}: {message}"
    return f"{variable}={str(value)!r}: {message}"


def _is_secret(annotation: object) -> bool:
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, (SecretStr, SecretBytes, pydantic.Secret)):
        return True
    return any(_is_secret(arg) for arg in get_args(annotation))
